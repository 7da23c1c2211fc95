// Strings as Go programs write them, for byte-compatible JSON.
//
// Apptainer's metadata (inspect output, the OCI config it stores, ORAS
// annotations) is written by Go's encoding/json, and users and tools compare
// it byte for byte. These reproduce Go's choices exactly: the HTML-safe
// escapes, U+2028/U+2029, and invalid UTF-8 replaced by U+FFFD.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace berth {

// Go's encoding/json quoting of a string, quotes included.
std::string GoJsonQuote(std::string_view s);

// Go's strconv.Quote (what fmt's %q prints), quotes included: printable
// runes as they are, C escapes for the usual controls, \xNN otherwise.
std::string GoQuote(std::string_view s);

// Length and code point of the UTF-8 sequence at s[i], or 0 when Go would
// not decode it (overlong, surrogate, out of range, truncated).
size_t DecodeUtf8Rune(std::string_view s, size_t i, uint32_t& rune);

}  // namespace berth
