#include "work_queue.hpp"

#include "lca/mpi.hpp"
#include "sweep_detail.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

namespace lca::Impl {
namespace {

/// Completes a request, sleeping between tests: MPI's blocking waits poll the network
/// non-stop, and ranks waiting for their next point would take the cores of ranks that compute.
void wait_sleeping(MPI_Request& request) {
  while (true) {
    int done = 0;
    mpi::check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

} // namespace

WorkQueue::WorkQueue(const SweepConfig& cfg, const Sweep& done)
    : cfg_(cfg), done_(done), longest_first_(cfg.groups > 1) {
  add(selected_points(cfg));
}

std::optional<PointId> WorkQueue::take() {
  while (pending_.empty() && running_.empty() && !ended_)
    next_round();
  const auto longer = [](const PointId& a, const PointId& b) {
    return a.nf > b.nf || (a.nf == b.nf && a.lambda < b.lambda);
  };
  auto next = pending_.end();
  for (auto it = pending_.begin(); it != pending_.end(); ++it)
    if (!waits_for_dictionary(*it) &&
        (next == pending_.end() || (longest_first_ && longer(*it, *next))))
      next = it;
  if (next == pending_.end())
    return std::nullopt;
  const PointId p = *next;
  pending_.erase(next);
  running_.push_back(p);
  return p;
}

void WorkQueue::ended(const PointId& p) {
  running_.erase(std::find_if(running_.begin(), running_.end(), [&](const PointId& q) {
    return same_point(q, p.nf, p.lambda, p.replicate);
  }));
}

void WorkQueue::add(const std::vector<PointId>& points) {
  for (const PointId& p : points)
    if (!has_point(done_, p.nf, p.lambda, p.replicate))
      pending_.push_back(p);
}

void WorkQueue::next_round() {
  if (round_ >= cfg_.refine) {
    ended_ = true;
    return;
  }
  ++round_;
  const std::vector<PointId> points = refinement_points(cfg_, done_, round_);
  if (points.empty())
    ended_ = true;
  add(points);
}

/// Reference mode trains a size's dictionary once: its other points wait while one runs.
bool WorkQueue::waits_for_dictionary(const PointId& p) const {
  if (cfg_.mode != SweepMode::reference)
    return false;
  const auto same = [&](const auto& q) { return q.nf == p.nf && q.replicate == p.replicate; };
  return std::none_of(done_.points.begin(), done_.points.end(), same) &&
         std::any_of(running_.begin(), running_.end(), same);
}

OwnedComm::~OwnedComm() {
  if (comm != MPI_COMM_NULL)
    MPI_Comm_free(&comm); // (a destructor: nothing to report a failure to)
}

Groups::Groups(MPI_Comm comm, int groups) : count(groups) {
  const int rank = mpi::rank(comm);
  ranks = mpi::size(comm);
  group = of(rank);
  mpi::check(MPI_Comm_split(comm, group, rank, &group_comm.comm), "MPI_Comm_split");
  group_rank = mpi::rank(group_comm.comm);
  mpi::check(MPI_Comm_dup(comm, &queue_comm.comm), "MPI_Comm_dup");
}

Order order_of(const PointId& p) {
  return {1, double(p.nf), p.lambda, double(p.replicate), double(p.round)};
}

PointId point_of(const Order& o) {
  return {int(o[1]), o[2], int(o[3]), int(o[4])};
}

void broadcast(Order& order, const Groups& g) {
  MPI_Request request;
  mpi::check(
      MPI_Ibcast(order.data(), int(order.size()), MPI_DOUBLE, 0, g.group_comm.comm, &request),
      "MPI_Ibcast of a group's order");
  wait_sleeping(request);
}

Order report_and_wait(const Groups& g, Tag tag, const std::vector<double>& report) {
  // Rank 0 takes the report between two batches of its own point: wait without spinning.
  Order order{};
  MPI_Request request;
  mpi::check(
      MPI_Isend(report.data(), int(report.size()), MPI_DOUBLE, 0, tag, g.queue_comm.comm, &request),
      "MPI_Isend of a group's report");
  wait_sleeping(request);
  mpi::check(MPI_Irecv(order.data(), int(order.size()), MPI_DOUBLE, 0, kOrder, g.queue_comm.comm,
                       &request),
             "MPI_Irecv of a group's order");
  wait_sleeping(request);
  return order;
}

std::optional<Report> next_report(const Groups& g) {
  int arrived = 0;
  MPI_Status st;
  mpi::check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, g.queue_comm.comm, &arrived, &st),
             "MPI_Iprobe");
  if (!arrived)
    return std::nullopt;
  int n = 0;
  mpi::check(MPI_Get_count(&st, MPI_DOUBLE, &n), "MPI_Get_count");
  Report r{st.MPI_SOURCE, Tag(st.MPI_TAG), std::vector<double>(static_cast<std::size_t>(n))};
  mpi::check(MPI_Recv(r.data.data(), n, MPI_DOUBLE, st.MPI_SOURCE, st.MPI_TAG, g.queue_comm.comm,
                      MPI_STATUS_IGNORE),
             "MPI_Recv of a group's report");
  return r;
}

void send_order(const Groups& g, int leader, const Order& order) {
  mpi::check(
      MPI_Send(order.data(), int(order.size()), MPI_DOUBLE, leader, kOrder, g.queue_comm.comm),
      "MPI_Send of an order");
}

} // namespace lca::Impl
