#pragma once
// The sweep's work queue (kept by rank 0) and its MPI transport, private to src/drivers: the
// groups of ranks, the orders that rank 0 sends to their leaders and the reports it receives,
// and waits that sleep instead of spinning.
#include "lca/scaling.hpp"

#include <mpi.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace lca::Impl {

/// Rank 0's queue: the points still to run, in schedule order, those running, and the
/// refinement rounds. A round is decided from the points of earlier rounds once all of them
/// have finished, as a one-group run decides it, so any number of groups adds the same points.
class WorkQueue {
public:
  /// `done` (the sweep's finished points, which the caller keeps adding to) must outlive it.
  WorkQueue(const SweepConfig& cfg, const Sweep& done);

  /// The next point a group may start now, if any: the first in schedule order, or with several
  /// groups the first of the largest nf and then the smallest lambda, so that the longest points
  /// do not finish last while the other groups idle (a point's work per iteration grows with nf,
  /// FISTA's iterations and the active fraction as lambda falls: 10x from lambda 0.9 to 0.1 in
  /// perf/README.md's sweep).
  std::optional<PointId> take();
  /// p no longer runs: finished (and recorded in the sweep) or interrupted.
  void ended(const PointId& p);
  /// Nothing left to run or to decide.
  bool complete() const { return ended_ && pending_.empty() && running_.empty(); }
  std::size_t running() const { return running_.size(); }

private:
  void add(const std::vector<PointId>& points);
  void next_round();
  bool waits_for_dictionary(const PointId& p) const;

  const SweepConfig& cfg_;
  const Sweep& done_;
  std::deque<PointId> pending_;
  std::vector<PointId> running_;
  const bool longest_first_;
  int round_ = 0;
  bool ended_ = false;
};

/// A communicator freed at the end of its scope.
struct OwnedComm {
  MPI_Comm comm = MPI_COMM_NULL;
  OwnedComm() = default;
  OwnedComm(const OwnedComm&) = delete;
  OwnedComm& operator=(const OwnedComm&) = delete;
  ~OwnedComm();
};

/// The groups of a sweep: consecutive ranks, so world rank 0 leads group 0.
struct Groups {
  int count = 1, ranks = 1;
  int group = 0, group_rank = 0;
  OwnedComm group_comm; ///< this rank's group: train and denoise split batches over it
  OwnedComm queue_comm; ///< group leaders <-> rank 0 (a duplicate of the sweep's comm)

  Groups(MPI_Comm comm, int groups);
  int of(int rank) const { return int(std::int64_t(rank) * count / ranks); }
};

/// Messages from group leaders to rank 0 (each also asks for the next order).
enum Tag : int { kReady = 1, kResult, kInterrupted, kOrder };

/// What a group runs next, {go, nf, lambda, replicate, round}; go = 0: the sweep is over.
using Order = std::array<double, 5>;
Order order_of(const PointId& p);
PointId point_of(const Order& o);

/// The group learns its next order from its leader (Ibcast: rank 0 polls the queue meanwhile).
void broadcast(Order& order, const Groups& g);

/// A group leader: sends rank 0 its report (tag kReady, kResult with a packed record, or
/// kInterrupted) and waits, sleeping, for the next order.
Order report_and_wait(const Groups& g, Tag tag, const std::vector<double>& report);

/// A group leader's report as rank 0 receives it.
struct Report {
  int leader = 0; ///< its rank
  Tag tag = kReady;
  std::vector<double> data;
};
/// Rank 0: the next report that has arrived, if any (does not wait).
std::optional<Report> next_report(const Groups& g);
/// Rank 0: sends a leader its order.
void send_order(const Groups& g, int leader, const Order& order);

} // namespace lca::Impl
