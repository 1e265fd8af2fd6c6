#pragma once
// Typed exceptions: the library throws, apps catch at the top and exit cleanly (all ranks).
#include <stdexcept>
#include <string>

namespace lca {

/// Base of every error the library reports; what() is one human-readable line.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// A shape, parameter or flag value that cannot be used.
struct InvalidArgument : Error {
  using Error::Error;
};
/// A file that is missing, unreadable, truncated, of the wrong format or not writable.
struct IoError : Error {
  using Error::Error;
};
/// NaN/Inf detected in inputs or in the solver/learner state.
struct NumericalError : Error {
  using Error::Error;
};

} // namespace lca
