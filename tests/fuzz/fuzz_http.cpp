// libFuzzer target for the portal's HTTP input (RFC 9112 framing by Beast's parser with the web
// server's limits, then portal/http_request.hpp and the value parsers of portal/web.hpp: percent
// decoding, application/x-www-form-urlencoded, the Cookie header). Invariants: the parser stops at
// the limits; an accepted target's path starts with '/' and holds no NUL; header names are lower
// case; percent-encoding what was decoded decodes back to it; form pairs and cookies come only from
// the text given.
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>

#include "fuzz_common.hpp"
#include "portal/http_request.hpp"
#include "portal/web.hpp"
#include "portal/web_server.hpp"

using namespace mailward;
namespace http = boost::beast::http;

namespace {

std::string percent_encode(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

void check_values(const portal::HttpRequest& r) {
    for (const auto& [name, value] : r.headers)
        for (char c : name) fuzz::check(!(c >= 'A' && c <= 'Z'), "header names in lower case");
    if (auto pairs = portal::parse_urlencoded(r.query)) {
        for (const auto& [k, v] : *pairs) fuzz::check(k.size() + v.size() <= r.query.size(), "pairs from the query");
    }
    if (auto pairs = portal::parse_urlencoded(r.body)) {
        for (const auto& [k, v] : *pairs) fuzz::check(k.size() + v.size() <= r.body.size(), "pairs from the body");
    }
    if (auto cookie = r.header("cookie")) {
        for (const auto& [k, v] : portal::parse_cookies(*cookie))
            fuzz::check(!k.empty() && k.size() + v.size() < cookie->size(), "cookies from the header");
    }
    auto again = portal::percent_decode(percent_encode(r.path), false);
    fuzz::check(again && *again == r.path, "percent-decoding round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint8_t bits = in.byte();
    const std::string_view wire = in.rest();
    const portal::HttpLimits limits;

    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit((bits & 1) ? 64 : limits.max_body_bytes);
    parser.eager(true);
    // Fed in pieces of 1..16 bytes (or all at once), as a network delivers them.
    const std::size_t step = (bits >> 1) & 15;
    std::string buffered;
    std::size_t pos = 0;
    boost::beast::error_code ec;
    while (!parser.is_done() && !ec && pos < wire.size()) {
        const std::size_t n = step == 0 ? wire.size() - pos : std::min<std::size_t>(step, wire.size() - pos);
        buffered.append(wire.substr(pos, n));
        pos += n;
        const std::size_t used = parser.put(boost::asio::buffer(buffered), ec);
        if (ec == http::error::need_more) ec = {};
        buffered.erase(0, used);
    }
    if (parser.is_header_done()) {
        fuzz::check(pos <= wire.size(), "read within the input");
        bool ok = false;
        const portal::HttpRequest r = portal::to_request(parser.get(), "127.0.0.1", ok);
        if (ok) {
            fuzz::check(!r.path.empty() && r.path.front() == '/', "path is origin-form");
            fuzz::check(r.path.find('\0') == std::string::npos, "no NUL in the path");
        }
        if (parser.is_done()) fuzz::check(r.body.size() <= ((bits & 1) ? 64u : limits.max_body_bytes), "body limit");
        check_values(r);
    }
    return 0;
}
