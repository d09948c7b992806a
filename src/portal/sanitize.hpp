// The escrow portal's allow-list HTML sanitizer. Input: the HTML body of an escrowed message,
// HOSTILE and already converted to UTF-8. It is parsed by Gumbo as a browser parses a document
// (WHATWG HTML "tree construction"), and only allow-listed HTML elements, attributes, URL schemes
// (RFC 3986 scheme, WHATWG URL normalisation) and CSS declarations are written back, escaped here;
// nothing of the input is copied through raw. The result goes into a sandboxed iframe srcdoc with
// its own CSP: this is the first line of defence and is meant to be safe on its own.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mailward::portal {
// The inline namespace keeps these symbols apart from html_sanitizer.hpp's same-named ones, so the
// two can never be silently mixed up at link time (different layouts, one mangled name).
inline namespace gumbo_allowlist {

struct SanitizeOptions {
    bool allow_remote_images = false;   // the portal always passes false
    std::size_t max_depth = 256;        // deeper nesting is flattened (text kept)
    std::size_t max_output = 4u << 20;  // bytes; output is truncated at an element boundary past it
};

struct SanitizeReport {
    std::size_t removed_elements = 0;    // dropped or unwrapped elements (script, style, iframe, ...)
    std::size_t removed_attributes = 0;  // attributes not written (not allowed or bad value)
    std::size_t blocked_images = 0;      // remote (http/https/protocol-relative) images not loaded
    bool truncated = false;              // max_output or a parser work limit was reached
};

struct Sanitized {
    std::string html;  // an HTML fragment (no html/head/body), valid UTF-8
    SanitizeReport report;
};

// html: UTF-8 text of an HTML body (the caller converts charsets; invalid UTF-8 becomes U+FFFD).
// Never throws for any input (std::bad_alloc aside); the work is linear in the input size: the
// parser is fed at most a bounded number of tags and bounded nesting, see sanitize.cpp.
Sanitized sanitize_html(std::string_view html, const SanitizeOptions& options = {});

}  // namespace gumbo_allowlist
}  // namespace mailward::portal
