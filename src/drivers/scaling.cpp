// The sweep's orchestration: training and testing one point, rank 0 leading the sweep (the
// work queue, recording finished points, progress lines) and the other ranks following its
// orders. The sweep file format is in sweep_file.cpp, refinement in refine.cpp, the queue and
// its MPI transport in work_queue.cpp.
#include "lca/scaling.hpp"
#include "lca/checkpoint.hpp"
#include "lca/distributed.hpp"
#include "lca/error.hpp"
#include "lca/format.hpp"
#include "lca/mpi.hpp"
#include "lca/random.hpp"
#include "sweep_detail.hpp"
#include "work_queue.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <thread>

namespace lca {
namespace {

using namespace Impl;
using Clock = std::chrono::steady_clock;

std::string fmt(double v) {
  return format_number(v);
}

/// Replicate r > 0 draws its own dictionary initialisation and training-image order.
std::uint64_t replicate_seed(std::uint64_t seed, int replicate) {
  return replicate == 0 ? seed : hash_combine(seed, std::uint64_t(replicate));
}

/// Trains and tests one point, collectively over comm; nullopt when SIGINT/SIGTERM stopped the
/// training (its checkpoint saved). In reference mode a size's dictionary is trained by its first
/// point; the others find the finished checkpoint and read the dictionary back from it.
std::optional<SweepRecord> compute_point(const SweepConfig& cfg, const PointId& id,
                                         const ImageSet& train_set, const ImageSet& test_set,
                                         MPI_Comm comm, std::ostream* progress,
                                         const std::function<void()>& after_batch) {
  const auto t0 = Clock::now();
  const int rank = mpi::rank(comm);
  TrainConfig tc = cfg.train;
  tc.geometry.nf = id.nf;
  tc.learn.seed = replicate_seed(cfg.train.learn.seed, id.replicate);
  tc.shuffle_seed = replicate_seed(cfg.train.shuffle_seed, id.replicate);
  const double train_lambda = cfg.mode == SweepMode::reference ? cfg.reference_lambda : id.lambda;
  tc.lca.transfer = make_transfer(tc.preset, train_lambda);
  tc.checkpoint = checkpoint_of(cfg, id.nf, id.lambda, id.replicate);
  tc.after_batch = after_batch;
  if (rank == 0)
    std::filesystem::create_directories(std::filesystem::path(tc.checkpoint).parent_path());
  std::optional<Checkpoint> resume;
  // Whether to resume steers the collectives of training: the group's rank 0 decides.
  if (mpi::from_rank0(comm, [&] { return std::filesystem::exists(tc.checkpoint); })) {
    resume = read_checkpoint(tc.checkpoint);
    check_resume_compatible(*resume, tc.geometry, tc.lca, tc.learn, train_set.identity,
                            tc.checkpoint);
  }
  const TrainSummary ts = train(tc, train_set, resume, comm, progress);
  if (ts.interrupted)
    return std::nullopt;
  SweepRecord rec;
  rec.train_gap_mean = ts.mean_gap, rec.train_gap_max = ts.max_gap;
  rec.train_seconds = ts.seconds;
  if (ts.batches > 0)
    rec.train_unconverged = double(ts.unconverged);
  for (const CurvePoint& c : ts.curve)
    rec.train_curve.insert(rec.train_curve.end(),
                           {double(c.epoch), double(c.images_seen), c.energy, c.percent_error,
                            c.percent_active, c.seconds, c.validation_seconds});
  if (tc.auto_epochs) {
    rec.train_plateau = ts.plateau == Plateau::reached ? 1.0 : 0.0;
    rec.train_epochs = ts.curve.empty() ? NAN : double(ts.curve.back().epoch);
    if (ts.kept_epoch >= 0)
      rec.train_kept_epoch = double(ts.kept_epoch);
  }
  LcaParams p = tc.lca;
  p.transfer = make_transfer(tc.preset, id.lambda);
  if (!std::isnan(cfg.test_stop_gap))
    p.stop_gap = cfg.test_stop_gap;
  DenoiseConfig dc = cfg.test;
  dc.after_batch = after_batch;
  const DenoiseResult r = denoise(tc.geometry, p, ts.dictionary, test_set, dc, comm, nullptr);
  rec.nf = id.nf;
  rec.system_size = tc.geometry.neurons();
  rec.replicate = id.replicate;
  rec.refine_round = id.round;
  rec.lambda = id.lambda;
  rec.train_lambda = train_lambda;
  const MeanSe e = mean_se(r.error);
  rec.percent_active = mean_se(r.active).mean;
  rec.error_mean = e.mean, rec.error_se = e.se;
  rec.noisy_error_mean = mean_se(r.noisy_error).mean;
  rec.energy_mean = mean_se(r.energy).mean;
  rec.response_mean = r.response.empty() ? 0.0 : mean_se(r.response).mean;
  rec.iterations_mean = mean_se(r.iterations).mean;
  if (!r.gap.empty())
    rec.gap_mean = mean_se(r.gap).mean, rec.gap_max = max_of(r.gap);
  rec.unconverged = double(r.unconverged);
  rec.image_error = r.error, rec.image_active = r.active, rec.image_response = r.response;
  rec.image_mse = r.mse;
  rec.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return rec;
}

/// Puts a prefix before every line passed on to `out`: with several groups, each leader's
/// [train] lines say which group they come from.
class PrefixedStream : public std::ostream {
public:
  PrefixedStream(std::ostream& out, std::string prefix)
      : std::ostream(nullptr), buf_(out, std::move(prefix)) {
    rdbuf(&buf_);
  }

private:
  struct Buf : std::streambuf {
    Buf(std::ostream& o, std::string p) : out(o), prefix(std::move(p)) {}
    int overflow(int c) override {
      if (traits_type::eq_int_type(c, traits_type::eof()))
        return traits_type::not_eof(c);
      if (at_line_start)
        out << prefix;
      at_line_start = c == '\n';
      out.put(char(c));
      return c;
    }
    int sync() override {
      out.flush();
      return 0;
    }
    std::ostream& out;
    std::string prefix;
    bool at_line_start = true;
  } buf_;
};

/// Every rank but rank 0: runs what its group is ordered to until the sweep is over. A group
/// leader sends rank 0 its last result (or kReady, kInterrupted) and receives the next order,
/// which the group gets by broadcast.
void follow(const SweepConfig& cfg, const ImageSet& train_set, const ImageSet& test_set,
            const Groups& g, std::ostream* progress) {
  std::vector<double> report;
  Tag tag = kReady;
  while (true) {
    Order order = g.group != 0 && g.group_rank == 0 ? report_and_wait(g, tag, report) : Order{};
    broadcast(order, g);
    if (order[0] == 0)
      return;
    const std::optional<SweepRecord> rec =
        compute_point(cfg, point_of(order), train_set, test_set, g.group_comm.comm, progress, {});
    tag = rec ? kResult : kInterrupted;
    report = rec ? pack(*rec) : std::vector<double>();
  }
}

/// The sweep as it starts: cfg's header and the points already in its sweep file (or, with
/// only_points, in the selection's point files), which must have been made with the same
/// settings.
Sweep resumed_sweep(const SweepConfig& cfg, const ImageSet& train_set, const ImageSet& test_set) {
  Sweep s;
  s.mode = cfg.mode;
  s.reference_lambda = cfg.mode == SweepMode::reference ? cfg.reference_lambda : 0;
  s.settings = sweep_settings(cfg, train_set, test_set);
  std::vector<std::string> existing;
  if (!cfg.only_points && std::filesystem::exists(sweep_path(cfg.out_dir)))
    existing.push_back(sweep_path(cfg.out_dir));
  for (const PointId& p : selected_points(cfg))
    if (cfg.only_points && std::filesystem::exists(point_file(cfg, p)))
      existing.push_back(point_file(cfg, p));
  for (const std::string& file : existing) {
    Sweep old = read_sweep(file);
    if (old.settings != s.settings)
      throw InvalidArgument(
          file + " was made with other settings; use another --out-dir or the same flags (file: " +
          old.settings + ")");
    s.points.insert(s.points.end(), old.points.begin(), old.points.end());
  }
  return s;
}

/// The selected grid points that a resumed sweep still lacks.
std::size_t grid_points_left(const SweepConfig& cfg, const Sweep& s) {
  const std::vector<PointId> grid = selected_points(cfg);
  return std::size_t(std::count_if(grid.begin(), grid.end(), [&](const PointId& p) {
    return !has_point(s, p.nf, p.lambda, p.replicate);
  }));
}

/// Rank 0: keeps the queue and the sweep, and runs group 0's points. Other groups are served
/// whenever rank 0 is between two batches of its own point, or idle.
class Lead {
public:
  Lead(const SweepConfig& cfg, const ImageSet& train_set, const ImageSet& test_set, const Groups& g,
       std::ostream* progress)
      : cfg_(cfg), train_set_(train_set), test_set_(test_set), g_(g),
        progress_(progress), run_{resumed_sweep(cfg, train_set, test_set), 0, false},
        queue_(cfg, run_.sweep), grid_left_(grid_points_left(cfg, run_.sweep)) {}
  Lead(const Lead&) = delete; // queue_ refers to run_
  Lead& operator=(const Lead&) = delete;

  /// Runs the sweep to its end or an interrupt, then tells every group that it is over (once).
  SweepRun run();

private:
  void serve();
  void started(const PointId& p, int group) const;
  void record(const SweepRecord& rec, int group);
  std::string finished_line(const SweepRecord& rec, int group) const;
  void say(const std::string& line) const {
    if (progress_)
      *progress_ << line << std::endl;
  }

  const SweepConfig& cfg_;
  const ImageSet& train_set_;
  const ImageSet& test_set_;
  const Groups& g_;
  std::ostream* progress_;
  SweepRun run_;                   ///< run_.sweep: every finished point
  WorkQueue queue_;                ///< (reads run_.sweep)
  const std::size_t grid_left_;    ///< grid points this run started without
  std::size_t grid_added_ = 0;     ///< of run_.added: "point k/n" counts this run's work
  int stopped_ = 0;                ///< groups told that the sweep is over
  std::map<int, PointId> running_; ///< group leader's rank -> its point
  std::deque<int> idle_;           ///< group leaders waiting for an order
  const Clock::time_point start_ = Clock::now();
};

SweepRun Lead::run() {
  const int workers = g_.count - 1;
  const std::function<void()> between_batches =
      workers > 0 ? std::function<void()>([this] { serve(); }) : nullptr;
  std::unique_ptr<PrefixedStream> tagged;
  if (progress_ && g_.count > 1)
    tagged = std::make_unique<PrefixedStream>(*progress_, "[group 0] ");

  while (true) {
    if (stop_signal() != 0 && !queue_.complete())
      run_.interrupted = true;
    serve();
    const std::optional<PointId> mine = run_.interrupted ? std::nullopt : queue_.take();
    if (mine) {
      Order order = order_of(*mine);
      broadcast(order, g_);
      started(*mine, 0);
      const std::optional<SweepRecord> rec =
          compute_point(cfg_, *mine, train_set_, test_set_, g_.group_comm.comm,
                        tagged ? tagged.get() : progress_, between_batches);
      queue_.ended(*mine);
      if (rec)
        record(*rec, 0);
      else
        run_.interrupted = true;
      continue;
    }
    if (stopped_ == workers && (run_.interrupted || queue_.complete()))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2)); // idle: poll the groups
  }
  Order end{};
  broadcast(end, g_);
  return std::move(run_);
}

/// Takes every report that has arrived, then gives each waiting group its next point, or the
/// end once nothing is left (or after an interrupt). A group that asks while a refinement round
/// waits for running points waits too.
void Lead::serve() {
  while (const std::optional<Report> r = next_report(g_)) {
    if (r->tag != kReady) {
      queue_.ended(running_.at(r->leader));
      running_.erase(r->leader);
      if (r->tag == kResult)
        record(unpack(r->data), g_.of(r->leader));
      else
        run_.interrupted = true;
    }
    idle_.push_back(r->leader);
  }
  while (!idle_.empty()) {
    const std::optional<PointId> p = run_.interrupted ? std::nullopt : queue_.take();
    if (!p && !run_.interrupted && !queue_.complete())
      break;
    send_order(g_, idle_.front(), p ? order_of(*p) : Order{});
    if (p) {
      running_[idle_.front()] = *p;
      started(*p, g_.of(idle_.front()));
    } else {
      ++stopped_;
    }
    idle_.pop_front();
  }
}

void Lead::started(const PointId& p, int group) const {
  if (g_.count > 1)
    say("[scaling] group " + std::to_string(group) + " starts " +
        describe_point(p.nf, p.lambda, p.replicate) + " (" + std::to_string(queue_.running()) +
        " of " + std::to_string(g_.count) + " groups busy)");
}

/// Adds a finished point to the sweep and rewrites the sweep file (or writes its point file).
void Lead::record(const SweepRecord& rec, int group) {
  Sweep& s = run_.sweep;
  s.points.push_back(rec);
  if (cfg_.only_points) {
    const std::string file = point_file(cfg_, {rec.nf, rec.lambda, rec.replicate, 0});
    std::filesystem::create_directories(std::filesystem::path(file).parent_path());
    write_sweep(file, Sweep{s.mode, s.settings, s.reference_lambda, {rec}});
  } else {
    write_sweep(sweep_path(cfg_.out_dir), s);
  }
  ++run_.added;
  grid_added_ += rec.refine_round == 0;
  say(finished_line(rec, group));
}

/// "[scaling] point 3/8  nf=4 lambda=0.5: error 12.34% +- 0.56, active 1.234%, gap ..., ETA ..."
/// (a refinement point: "[scaling] refinement point 2 (round 1)  nf=...").
std::string Lead::finished_line(const SweepRecord& rec, int group) const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double left = double(grid_left_ - std::min(grid_added_, grid_left_));
  std::ostringstream os; // (fixed and defaultfloat with a precision print as %f and %g do)
  if (rec.refine_round)
    os << "[scaling] refinement point " << run_.added - grid_added_ << " (round "
       << rec.refine_round << ")";
  else
    os << "[scaling] point " << grid_added_ << "/" << grid_left_;
  os << "  " << describe_point(rec.nf, rec.lambda, rec.replicate);
  if (cfg_.mode == SweepMode::reference)
    os << " (trained at " << fmt(rec.train_lambda) << ")";
  os << std::fixed << std::setprecision(2) << ": error " << rec.error_mean << "% +- "
     << rec.error_se << ", active " << std::setprecision(3) << rec.percent_active << "%, gap "
     << std::defaultfloat << std::setprecision(2) << rec.gap_mean << " (max " << rec.gap_max << ")";
  if (rec.unconverged > 0)
    os << " ABOVE --stop-gap";
  if (!std::isnan(rec.train_plateau))
    os << (rec.train_plateau > 0 ? ", plateau after " : ", epoch CAP WITHOUT A PLATEAU at ")
       << fmt(rec.train_epochs) << " epochs";
  if (!std::isnan(rec.train_kept_epoch))
    os << " (kept epoch " << fmt(rec.train_kept_epoch) << ": the last raised the energy)";
  os << std::fixed << std::setprecision(1) << "  (" << rec.seconds << " s";
  if (g_.count > 1)
    os << ", group " << group;
  os << ")  " << 3600.0 * double(run_.added) / elapsed << " points/h  ETA "
     << format_duration(elapsed / double(run_.added) * left)
     << (cfg_.refine ? " + refinement" : "");
  return os.str();
}

} // namespace

SweepRun run_sweep(const SweepConfig& cfg, const ImageSet& train_set, const ImageSet& test_set,
                   MPI_Comm comm, std::ostream* progress) {
  if (cfg.sizes.empty() || cfg.lambdas.empty())
    throw InvalidArgument("the grid is empty: give sizes and lambdas");
  if (cfg.train.preset == Preset::custom)
    throw InvalidArgument(
        "a sweep varies lambda: use a named threshold preset, not custom vertices");
  if (cfg.replicates < 1 || cfg.refine < 0 || !(cfg.refine_width > 0))
    throw InvalidArgument("a sweep needs replicates >= 1, refine >= 0 and refine width > 0");
  // Before any training: separate test data (--test-data-path) can have another shape.
  const auto shape = [](const ImageSet& d) {
    return std::to_string(d.channels) + "x" + std::to_string(d.height) + "x" +
           std::to_string(d.width);
  };
  if (shape(test_set) != shape(train_set))
    throw InvalidArgument("the test images are " + shape(test_set) + ", the training images " +
                          shape(train_set));
  const int rank = mpi::rank(comm), ranks = mpi::size(comm);
  if (cfg.groups < 1 || cfg.groups > ranks)
    throw InvalidArgument("--groups " + std::to_string(cfg.groups) + ": give 1 to " +
                          std::to_string(ranks) + " (the number of MPI ranks)");
  selected_points(cfg); // refuses a bad slice on every rank alike
  const Groups g(comm, cfg.groups);
  if (rank == 0)
    return Lead(cfg, train_set, test_set, g, progress).run();
  std::unique_ptr<PrefixedStream> tagged;
  if (progress && cfg.groups > 1)
    tagged =
        std::make_unique<PrefixedStream>(*progress, "[group " + std::to_string(g.group) + "] ");
  follow(cfg, train_set, test_set, g, tagged ? tagged.get() : progress);
  return {};
}

} // namespace lca
