// The portal's routes with a brand: GET /brand/logo serves the logo read at start (its type, a
// long cache lifetime, loadable from mail clients' origins), 404 without one; every page answers
// in the language Accept-Language picks, with Content-Language and Vary. Over a real SQLite store.
#include <gtest/gtest.h>

#include <boost/asio/thread_pool.hpp>

#include "config/config.hpp"
#include "escrow/keys.hpp"
#include "escrow/service.hpp"
#include "portal/app.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"

using namespace mailward;
using namespace mailward::portal;

namespace {

std::string header(const HttpResponse& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return {};
}

struct BrandRoutes : ::testing::Test {
    test::TempDir dir;
    std::unique_ptr<store::Store> st;
    std::unique_ptr<escrow::MasterKeyHolder> keys;
    std::unique_ptr<escrow::EscrowService> svc;
    boost::asio::thread_pool pool{1};

    void SetUp() override {
        config::Config cfg;
        cfg.server.data_dir = dir.path();
        auto s = store::open(cfg);
        ASSERT_TRUE(s) << s.error().message();
        st = std::move(*s);
        auto k = escrow::MasterKeyHolder::from_bytes(std::string(32, 'k'));
        ASSERT_TRUE(k);
        keys = std::move(*k);
        svc = std::make_unique<escrow::EscrowService>(*st, *keys, escrow::ServiceSettings{});
    }
    void TearDown() override { pool.join(); }

    HttpResponse get(Portal& p, std::string path, std::optional<std::string> accept_language = {}) {
        HttpRequest req;
        req.method = "GET";
        req.path = req.target = std::move(path);
        if (accept_language) req.headers.emplace_back("accept-language", *accept_language);
        return p.route(req, std::chrono::system_clock::now());
    }
};

TEST_F(BrandRoutes, ServesTheLogoReadAtStart) {
    PortalSettings s;
    s.origin = "https://portal.example.test:8443";
    s.brand.organization = "Acme";
    s.brand.has_logo = true;
    s.logo = std::string("\x89PNG\r\n\x1a\n", 8) + "pixels";
    s.logo_type = "image/png";
    Portal p(*svc, pool, s);
    const auto r = get(p, "/brand/logo");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, s.logo);
    EXPECT_EQ(header(r, "Content-Type"), "image/png");
    EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=604800");
    EXPECT_EQ(header(r, "Cross-Origin-Resource-Policy"), "cross-origin");
    EXPECT_EQ(header(r, "Content-Security-Policy"), "default-src 'none'; sandbox");

    PortalSettings none;
    none.origin = s.origin;
    Portal q(*svc, pool, none);
    EXPECT_EQ(get(q, "/brand/logo").status, 404);
}

TEST_F(BrandRoutes, AnswersInTheRequestsLanguage) {
    PortalSettings s;
    s.origin = "https://portal.example.test:8443";
    s.brand.organization = "Acme <Ltd>";
    Portal p(*svc, pool, s);
    struct Row {
        std::string path;
        std::optional<std::string> accept;
        int status;
        std::string lang, text;
    } rows[] = {
        {"/", std::nullopt, 200, "en", "Secure message portal"},
        {"/", "de-DE,de;q=0.9", 200, "de", "Portal für sichere Nachrichten"},
        {"/", "de;q=0, en", 200, "en", "Open the link in the email"},
        {"/nothing", "de", 404, "de", "Nicht gefunden"},
        {"/m/" + std::string(43, 'a'), "de", 404, "de", "Link ungültig"},
        {"/read", "de-AT", 401, "de", "Abgemeldet"},
        {"/read", "fr", 401, "en", "Signed out"},
    };
    for (const auto& r : rows) {
        const auto res = get(p, r.path, r.accept);
        EXPECT_EQ(res.status, r.status) << r.path;
        EXPECT_EQ(header(res, "Content-Language"), r.lang) << r.path << " " << r.accept.value_or("-");
        EXPECT_EQ(header(res, "Vary"), "Accept-Language") << r.path;
        EXPECT_NE(res.body.find("<html lang=\"" + r.lang + "\">"), std::string::npos) << res.body;
        EXPECT_NE(res.body.find(r.text), std::string::npos) << res.body;
        EXPECT_NE(res.body.find("Acme &lt;Ltd&gt;"), std::string::npos) << res.body;
    }
}

}  // namespace
