// The portal's HTTP values and helpers (no Boost in this header): a parsed request as the
// application sees it, its response, the handler signature (RFC 9110 semantics, header names lower
// case); HTML escaping, percent-decoding (RFC 3986 section 2.1), application/x-www-form-urlencoded
// (WHATWG URL), the Cookie header (RFC 6265 section 4.2.1), "__Host-" cookies (RFC 6265bis) and
// constant-time comparison. Inputs are untrusted: malformed input gives nullopt, never an exception.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/html_escape.hpp"

namespace mailward::portal {

struct HttpRequest {
    std::string method;                                        // "GET", "POST", ... as sent
    std::string target;                                        // origin-form "/path?query" as sent
    std::string path;                                          // percent-decoded path without the query ("/m/abc")
    std::string query;                                         // raw query string without '?'
    std::vector<std::pair<std::string, std::string>> headers;  // names lower case, in order
    std::string body;
    std::string remote_address;  // peer IP literal

    std::optional<std::string> header(std::string_view lower_name) const {
        for (const auto& [k, v] : headers)
            if (k == lower_name) return v;
        return std::nullopt;
    }
};

struct HttpResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;  // Content-Type, Set-Cookie, ...
    std::string body;
};

// The application: must not block; calls respond exactly once, from any thread.
using Respond = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest, Respond)>;

// What the application decides from a request's header alone, before any of its body is read
// (the route's body limit; a session or quota it can check already).
struct Admission {
    std::optional<HttpResponse> refuse;  // answered at once; the body is never read
    std::size_t body_limit = 0;          // otherwise: the most the body may be (413 past it, unread)
};
using Admit = std::function<void(Admission)>;
// Gets the request without its body (body empty); must not block; calls admit exactly once.
using Admitter = std::function<void(HttpRequest, Admit)>;

using common::html_escape;  // & < > " ' escaped (common/html_escape.hpp)
// nullopt for a bad %xx escape; plus_as_space for form bodies.
std::optional<std::string> percent_decode(std::string_view s, bool plus_as_space);
// Pairs in order, duplicates kept; nullopt when a name or value has a bad escape.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_urlencoded(std::string_view body);
// name -> value; the first of a name wins; pairs without '=' are skipped.
std::map<std::string, std::string> parse_cookies(std::string_view header);

struct CookieOptions {
    std::chrono::seconds max_age{-1};  // < 0: a session cookie
    bool expire_now = false;           // Max-Age=0: the browser drops it
};
// "NAME=VALUE; Path=/; Secure; HttpOnly; SameSite=Strict[; Max-Age=N]" - no Domain.
std::string host_cookie(std::string_view name, std::string_view value, const CookieOptions& o = {});

bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace mailward::portal
