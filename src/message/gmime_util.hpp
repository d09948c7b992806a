// GMime and GLib plumbing shared by this folder only: one-time initialisation, owning pointers for
// GObjects, memory streams to and from std::string, and charset conversion to valid UTF-8.
#pragma once

#include <gmime/gmime.h>

#include <memory>
#include <string>
#include <string_view>

namespace mailward::message::detail {

void init();  // g_mime_init() once per process

struct Unref {
    void operator()(gpointer p) const {
        if (p) g_object_unref(p);
    }
};
template <class T>
using Ptr = std::unique_ptr<T, Unref>;

// A GMime stream over a copy of bytes.
Ptr<GMimeStream> stream_of(std::string_view bytes);
// Everything written to a memory stream.
std::string bytes_of(GMimeStream* mem);
// The decoded content of a leaf part (transfer encoding undone).
std::string decoded_content(GMimePart* part);
// text in charset (may be null or unknown: latin1 then) as valid UTF-8.
std::string to_utf8(std::string_view text, const char* charset);
// s itself when valid UTF-8, else with invalid sequences replaced by U+FFFD.
std::string valid_utf8(std::string_view s);
// Lines that begin with "--" (candidate MIME boundary lines): an upper bound on the parts a parser
// can make of bytes, counted before parsing.
std::size_t boundary_lines(std::string_view bytes);

}  // namespace mailward::message::detail
