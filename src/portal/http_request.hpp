// A request parsed by Beast (RFC 9112 framing) turned into the application's HttpRequest (web.hpp):
// the target split into its percent-decoded path and raw query, header names in lower case. Only
// the web server and the HTTP fuzz target include this header (it brings Beast's request type).
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>

#include "portal/web.hpp"

namespace mailward::portal {

// ok is false when the target is not origin-form ("/..."), its path does not percent-decode, or
// the decoded path holds a NUL: the server answers 400 then.
HttpRequest to_request(const boost::beast::http::request<boost::beast::http::string_body>& req, const std::string& ip,
                       bool& ok);

}  // namespace mailward::portal
