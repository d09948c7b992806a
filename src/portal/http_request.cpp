// Beast request -> HttpRequest (see http_request.hpp).
#include "portal/http_request.hpp"

namespace mailward::portal {

HttpRequest to_request(const boost::beast::http::request<boost::beast::http::string_body>& req, const std::string& ip,
                       bool& ok) {
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.remote_address = ip;
    std::string_view t = r.target;
    auto q = t.find('?');
    auto path = percent_decode(t.substr(0, q), false);
    ok = path && !t.empty() && t.front() == '/' && path->find('\0') == std::string::npos;
    if (path) r.path = std::move(*path);
    if (q != std::string_view::npos) r.query = std::string(t.substr(q + 1));
    for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& c : name)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        r.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    r.body = req.body();
    return r;
}

}  // namespace mailward::portal
