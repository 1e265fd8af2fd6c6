#pragma once
// The spellings of the run modes' enums (solver, transfer preset, dataset format, ...): one table
// per enum, so that flags, TOML configs, HDF5 attributes and printed lines use the same text.
#include <cstddef>
#include <optional>
#include <string_view>

namespace lca {

template <class E> struct EnumName {
  const char* name;
  E value;
};

/// The name of `value` in `names` ("" if the table lacks it, which a complete table rules out).
template <class E, std::size_t N>
constexpr const char* name_of(const EnumName<E> (&names)[N], E value) {
  for (const auto& n : names)
    if (n.value == value)
      return n.name;
  return "";
}

/// The value `text` names exactly, if any.
template <class E, std::size_t N>
constexpr std::optional<E> value_of(const EnumName<E> (&names)[N], std::string_view text) {
  for (const auto& n : names)
    if (text == n.name)
      return n.value;
  return std::nullopt;
}

} // namespace lca
