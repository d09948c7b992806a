// The allow-list HTML sanitizer for escrowed messages' HTML bodies (hostile input). The Gumbo
// HTML5 parser reads the input the way a browser would (WHATWG HTML tree construction), so there is
// no parser differential; only allow-listed elements, attributes, URL schemes and CSS declarations
// are written back out, escaped here. The result still goes into a sandboxed iframe with its own
// CSP: the sanitizer is the first line of defence, not the only one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mailward::portal {

struct SanitizeOptions {
    bool allow_remote_images = false;   // the portal always passes false
    std::size_t max_depth = 256;        // deeper elements are unwrapped (their text is kept)
    std::size_t max_output = 4u << 20;  // bytes; the output stops at an element boundary past it
    std::size_t max_tags = 20000;       // more start tags than this: not rendered (see Sanitized::refused)
};

struct SanitizeReport {
    std::size_t removed_elements = 0;    // dropped elements (script, style, iframe, unknown, ...)
    std::size_t removed_attributes = 0;  // dropped attributes and CSS declarations
    std::size_t blocked_images = 0;      // remote images not loaded
    bool truncated = false;              // max_output reached
    bool refused = false;                // too many tags to parse safely: html is empty
};

struct Sanitized {
    std::string html;  // a fragment (no html/head/body), UTF-8
    SanitizeReport report;
};

// html: the UTF-8 text of an HTML body (the caller converts charsets).
Sanitized sanitize_html(std::string_view html, const SanitizeOptions& options = {});

// Whether the allow-list keeps an element (lower-case HTML name); for the fuzz target's oracle.
bool kept_element(std::string_view name);

}  // namespace mailward::portal
