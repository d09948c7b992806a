// The portal's pages carry the brand (name, logo, colour, support contact, the sentence that nobody
// asks for a password), escaped, in the page's language with <html lang>.
#include <gtest/gtest.h>

#include "portal/pages.hpp"

using namespace mailward;
using namespace mailward::portal;

namespace {

bool has(const std::string& s, std::string_view what) { return s.find(what) != std::string::npos; }

escrow::Brand acme() {
    escrow::Brand b;
    b.organization = "<script>alert('x')</script> Acme";
    b.color = "#aa3300";
    b.support_contact = "https://acme.example/help?a=1&b=2";
    b.has_logo = true;
    return b;
}

TEST(PortalBrand, EveryPageCarriesTheBrandEscaped) {
    const auto b = acme();
    const auto expires = std::chrono::system_clock::from_time_t(1'800'000'000);
    message::MessageView v;
    v.subject = "Hello";
    v.text = "Body";
    MessagePage mp;
    mp.view = &v;
    mp.csrf = "c";
    mp.expires = expires;
    for (escrow::Lang l : escrow::kLanguages) {
        const Ui ui{l, &b};
        const std::string pages[] = {
            simple_page(ui, ui.t().not_found),
            landing_page(ui, std::string(43, 'a'), "Alice <alice@acme.example>", expires, "csrf", false),
            code_page(ui, std::string(43, 'a'), "csrf", ui.t().code_on_way),
            message_page(ui, mp),
        };
        for (const auto& p : pages) {
            EXPECT_FALSE(has(p, "<script>")) << p;
            EXPECT_TRUE(has(p, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Acme")) << p;
            EXPECT_TRUE(has(p, "<html lang=\"" + std::string(escrow::tag(l)) + "\">")) << p;
            EXPECT_TRUE(has(p, "<img src=\"/brand/logo\"")) << p;
            EXPECT_TRUE(has(p, "--brand:#aa3300")) << p;
            EXPECT_TRUE(has(p, "href=\"https://acme.example/help?a=1&amp;b=2\"")) << p;
            EXPECT_TRUE(has(p, std::string(escrow::texts(l).portal_name))) << p;
        }
    }
}

TEST(PortalBrand, GermanAndEnglishTexts) {
    const auto b = acme();
    const auto expires = std::chrono::system_clock::from_time_t(1'800'000'000);
    struct Row {
        escrow::Lang lang;
        std::string h1, never, button;
    } rows[] = {
        {escrow::Lang::en, "<h1>You have a secure message</h1>", "never asks for your password", "Send me a code"},
        {escrow::Lang::de, "<h1>Sie haben eine sichere Nachricht</h1>", "fragt nie nach Ihrem Passwort",
         "Code anfordern"},
    };
    for (const auto& r : rows) {
        const Ui ui{r.lang, &b};
        const auto p = landing_page(ui, std::string(43, 'a'), "Alice <alice@acme.example>", expires, "csrf", false);
        EXPECT_TRUE(has(p, r.h1)) << p;
        EXPECT_TRUE(has(p, r.never)) << p;
        EXPECT_TRUE(has(p, r.button)) << p;
        EXPECT_TRUE(has(p, "<strong>Alice &lt;alice@acme.example&gt;</strong>")) << p;
    }
}

TEST(PortalBrand, DefaultsWithoutLogoOrSupport) {
    const Ui ui;  // no brand: the defaults
    const auto p = simple_page(ui, ui.t().home);
    EXPECT_FALSE(has(p, "<img")) << p;
    EXPECT_TRUE(has(p, "localhost")) << p;
    EXPECT_TRUE(has(p, "<html lang=\"en\">")) << p;
    EXPECT_FALSE(has(p, "Questions?")) << p;
}

}  // namespace
