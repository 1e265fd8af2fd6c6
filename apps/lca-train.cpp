// lca-train: learn a convolutional dictionary with LCA (algorithm.md §2-§4).
#include "app_main.hpp"
#include "lca/checkpoint.hpp"
#include "lca/core.hpp"
#include "lca/distributed.hpp"
#include "lca/format.hpp"
#include "lca/mpi.hpp"
#include "lca/solver.hpp"
#include "no_overwrite.hpp"
#include "options.hpp"

#include <cmath>
#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  return lca::app::run("lca-train", argc, argv, [](int argc, char** argv) {
    CLI::App app{"Train a convolutional sparse-coding dictionary with the Locally Competitive "
                 "Algorithm (kokkos-lca)."};
    lca::app::add_config(app);
    lca::DatasetSpec data_spec;
    lca::app::ModelOptions model;
    std::string output = "results/train/checkpoint.h5", resume;
    lca::app::add_dataset_options(app, data_spec);
    model.add(app, true);
    app.add_option("--output,-o", output, "checkpoint file to write (HDF5)")->capture_default_str();
    app.add_option("--resume", resume, "continue from this checkpoint");
    // Test only (tests/reliability/test_mpi_fault.py), hidden from --help: this rank throws
    // just before training, while the others already wait in its first MPI_Allreduce, to check
    // that one failing rank ends the whole job with one message instead of a hang.
    int inject_fault = -1;
    app.add_option("--inject-fault", inject_fault, "rank that fails before training")->group("");
    if (int rc = lca::app::parse(app, "lca-train", argc, argv); rc >= 0)
      return rc;
    if (!resume.empty() && app.count("--output") == 0)
      output = resume; // continue in place
    {
      std::vector<lca::app::FileRole> inputs,
          outputs{{"--output", output}, {"the feature montage", lca::features_png_path(output)}};
      for (const auto& file : lca::dataset_files(data_spec))
        inputs.push_back({"input data", file});
      lca::app::add_config_inputs(app, inputs);
      // The one allowed case: --resume ck.h5 -o ck.h5 continues in place (read, then replaced).
      if (!resume.empty() && !lca::app::same_file(resume, output))
        inputs.push_back({"--resume", resume});
      lca::app::refuse_overwriting_inputs(inputs, outputs);
    }

    const int rank = lca::app::rank();
    lca::ImageSet data = lca::load_dataset(data_spec);
    const auto constant = lca::normalize_images(data);
    model.finish(data);
    lca::ImageSet validation;
    model.hold_out_validation(data, data_spec.seed, validation);
    auto& cfg = model.cfg;
    std::optional<lca::Checkpoint> ck;
    if (!resume.empty()) {
      ck = lca::read_checkpoint(resume);
      lca::check_resume_compatible(*ck, cfg.geometry, cfg.lca, cfg.learn, data.identity);
      if (ck->batch_size != cfg.batch_size || ck->shuffle != cfg.shuffle ||
          ck->shuffle_seed != cfg.shuffle_seed)
        throw lca::InvalidArgument("checkpoint " + resume +
                                   " is incompatible: batch size or shuffle settings differ");
    }
    cfg.checkpoint = output;
    const int ranks = lca::mpi::size(MPI_COMM_WORLD);
    lca::app::stop_point("before training started");
    if (rank == 0) {
      const auto dir = std::filesystem::path(output).parent_path();
      if (!dir.empty())
        std::filesystem::create_directories(dir);
      const auto& g = cfg.geometry;
      const lca::LcaParams runs = lca::resolve_solver(cfg.lca, g);
      std::cout << "lca-train: " << data.n << " images " << g.channels << "x" << g.height << "x"
                << g.width << " (" << constant << " constant), nf " << g.nf << ", " << g.kernel
                << "x" << g.kernel << " stride " << g.stride << ", " << g.neurons() << " neurons, "
                << cfg.preset << " lambda " << cfg.lca.transfer.lambda << ", "
                << lca::app::describe_solver(cfg.lca, &runs) << ", backend " << lca::backend_name()
                << ", " << ranks << " rank(s), " << lca::app::threads()
                << (cfg.validation ? ", " + std::to_string(validation.n) + " validation images"
                                   : "")
                << (cfg.auto_epochs
                        ? ", epochs auto (plateau " + lca::format_number(cfg.plateau_tol, "%.3g") +
                              ", cap " + std::to_string(cfg.max_epochs) + ")"
                        : "")
                << (cfg.learn.eta_decay_epochs > 0
                        ? ", eta / (1 + epoch / " +
                              lca::format_number(cfg.learn.eta_decay_epochs, "%.3g") + ")"
                        : "")
                << (cfg.warm_start ? ", warm starts" : "")
                << (ck ? ", resuming at image " + std::to_string(ck->images_seen) : "")
                << std::endl;
    }
    if (inject_fault == rank)
      throw lca::Error("injected fault (--inject-fault)"); // app::run adds "(rank N)"
    const auto s = lca::train(cfg, data, ck, MPI_COMM_WORLD, &std::cout);
    if (rank == 0) {
      std::cout << "lca-train: " << (s.interrupted ? "interrupted (checkpoint saved); " : "done; ")
                << s.images << " images in " << s.batches << " batches, "
                << lca::format_duration(s.seconds) << " (" << s.images_per_second << " img/s, "
                << s.images_per_second * s.mean_iterations << " image-iterations/s)\n"
                << "  final: energy " << s.mean_energy << ", error " << s.mean_percent_error
                << "%, active " << s.mean_percent_active << "%\n"
                << "  solver: " << s.mean_iterations << " iterations per batch (+ "
                << s.mean_polish_iterations << " support rounds), "
                << (std::isnan(s.mean_gap)
                        ? std::string("no certificate (hard threshold)")
                        : "duality gap mean " + lca::format_number(s.mean_gap, "%.3g") + ", max " +
                              lca::format_number(s.max_gap, "%.3g"))
                << (cfg.lca.stop_gap > 0
                        ? (s.unconverged > 0 ? ", " + std::to_string(s.unconverged) +
                                                   " image(s) ABOVE --stop-gap at the cap"
                                             : std::string(", every image certified"))
                        : std::string())
                << "\n";
      if (!s.curve.empty())
        std::cout << "  validation: energy " << s.curve.back().energy << ", error "
                  << s.curve.back().percent_error << "%, active " << s.curve.back().percent_active
                  << "% after epoch " << s.curve.back().epoch << "\n";
      if (cfg.auto_epochs && !s.interrupted)
        std::cout << "  " << lca::app::describe_plateau(s, cfg) << "\n";
      std::cout << "  checkpoint: " << output << "\n";
      if (!s.interrupted)
        std::cout << "  features:   " << lca::features_png_path(output) << std::endl;
    }
    return 0;
  });
}
