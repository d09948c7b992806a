// The brand on the notice and the code mail: the organisation's name, logo URL, colour and support
// contact, the sender's name, the sentence that nobody asks for a password, in English and German;
// every value escaped (HTML) or quoted (headers); and the text tables complete and consistent.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "escrow/brand.hpp"
#include "escrow/notice.hpp"
#include "message/view.hpp"

using namespace mailward;
using namespace mailward::escrow;

namespace {

Brand brand(Lang l) {
    Brand b;
    b.organization = "Acme <script>alert(1)</script> & Co";
    b.color = "#aa3300";
    b.support_contact = "help@acme.example";
    b.has_logo = true;
    b.language = l;
    return b;
}

NoticeInput notice_input(Lang l) {
    NoticeInput n;
    n.from = "\"Alice Sender\" <alice@acme.example>";
    n.sender_name = "Alice Sender <alice@acme.example>";
    n.to = "bob@example.net";
    n.link = "https://portal.acme.example:8443/m/TOKEN";
    n.expires = std::chrono::system_clock::from_time_t(1'800'000'000);
    n.hostname = "relay.acme.example";
    n.brand = brand(l);
    n.logo_url = "https://portal.acme.example:8443/brand/logo";
    return n;
}

bool has(const std::string& s, std::string_view what) { return s.find(what) != std::string::npos; }

TEST(EscrowBrand, NoticeCarriesTheBrandEscapedInEachLanguage) {
    struct Row {
        Lang lang;
        std::string subject, never, intro;
    } rows[] = {
        {Lang::en, "Subject: A secure message is waiting for you", "This message never asks for your password.",
         "sent you a secure message."},
        {Lang::de, "Subject: Eine sichere Nachricht wartet auf Sie", "Diese Nachricht fragt nie nach Ihrem Passwort.",
         "hat Ihnen eine sichere Nachricht geschickt."},
    };
    for (const auto& r : rows) {
        auto raw = compose_notice(notice_input(r.lang));
        ASSERT_TRUE(raw) << raw.error().message();
        EXPECT_TRUE(has(*raw, r.subject)) << *raw;
        EXPECT_TRUE(has(*raw, "Content-Language: " + std::string(tag(r.lang)))) << *raw;
        auto view = message::parse_message(*raw);
        ASSERT_TRUE(view);
        for (const std::string* body : {&view->text, &view->html}) {
            EXPECT_TRUE(has(*body, r.never)) << *body;
            EXPECT_TRUE(has(*body, r.intro)) << *body;
            EXPECT_TRUE(has(*body, "Alice Sender")) << *body;
            EXPECT_TRUE(has(*body, "help@acme.example")) << *body;
        }
        // The text part is plain text; the HTML part escapes every value.
        EXPECT_TRUE(has(view->text, "Acme <script>alert(1)</script> & Co"));
        EXPECT_FALSE(has(view->html, "<script>")) << view->html;
        EXPECT_TRUE(has(view->html, "Acme &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co")) << view->html;
        EXPECT_TRUE(has(view->html, "<img src=\"https://portal.acme.example:8443/brand/logo\"")) << view->html;
        EXPECT_TRUE(has(view->html, "href=\"mailto:help@acme.example\"")) << view->html;
        EXPECT_TRUE(has(view->html, "#aa3300")) << view->html;
        EXPECT_TRUE(has(view->html, "<html lang=\"" + std::string(tag(r.lang)) + "\"")) << view->html;
        EXPECT_TRUE(has(view->html, "<strong>Alice Sender &lt;alice@acme.example&gt;</strong>")) << view->html;
    }
}

TEST(EscrowBrand, NoLogoNoSupportLeavesThemOut) {
    auto n = notice_input(Lang::en);
    n.logo_url.clear();
    n.brand.support_contact.clear();
    auto raw = compose_notice(n);
    ASSERT_TRUE(raw);
    // An ASCII notice stays 7bit (short lines): the link is in the raw mail as it is.
    EXPECT_TRUE(has(*raw, "\r\nhttps://portal.acme.example:8443/m/TOKEN\r\n")) << *raw;
    EXPECT_TRUE(has(*raw, "href=\"https://portal.acme.example:8443/m/TOKEN\"")) << *raw;
    auto view = message::parse_message(*raw);
    ASSERT_TRUE(view);
    EXPECT_FALSE(has(view->html, "<img")) << view->html;
    EXPECT_FALSE(has(view->html, "mailto:")) << view->html;
    EXPECT_FALSE(has(view->text, "Questions?")) << view->text;
    EXPECT_TRUE(has(view->text, "This message never asks for your password."));
}

TEST(EscrowBrand, CodeMailFromTheOrganisationInItsLanguage) {
    struct Row {
        Lang lang;
        std::string line;
    } rows[] = {{Lang::en, "Your one-time code is: 123456"}, {Lang::de, "Ihr Einmalcode lautet: 123456"}};
    for (const auto& r : rows) {
        CodeMailInput in{"bob@example.net",    "123456",      std::chrono::minutes(15),
                         "relay.acme.example", brand(r.lang), "https://portal.acme.example/brand/logo"};
        in.brand.organization = "Acme \"Quoted\" \\ Ltd\r\nBcc: evil@example.org";
        auto raw = compose_code_mail(in);
        ASSERT_TRUE(raw) << raw.error().message();
        auto view = message::parse_message(*raw);
        ASSERT_TRUE(view);
        // The name stays one quoted display name: no header injected, the address is ours.
        EXPECT_FALSE(has(raw->substr(0, raw->find("\r\n\r\n")), "\r\nBcc:")) << *raw;
        EXPECT_TRUE(has(view->from, "<no-reply@relay.acme.example>")) << view->from;
        EXPECT_TRUE(has(view->from, "Acme")) << view->from;
        EXPECT_TRUE(has(view->text, r.line)) << view->text;
        EXPECT_TRUE(has(view->html, "123456")) << view->html;
        EXPECT_TRUE(has(view->html, "https://portal.acme.example/brand/logo")) << view->html;
        EXPECT_TRUE(has(*raw, "Content-Language: " + std::string(tag(r.lang))));
    }
}

TEST(EscrowBrand, HeaderPhraseQuotesAndDropsControls) {
    struct Row {
        std::string in, want;
    } rows[] = {
        {"Acme Ltd", "\"Acme Ltd\""},
        {"A \"B\" C", "\"A \\\"B\\\" C\""},
        {"back\\slash", "\"back\\\\slash\""},
        {"line\r\nbreak\t", "\"linebreak\""},
        {"", "\"\""},
    };
    for (const auto& r : rows) EXPECT_EQ(header_phrase(r.in), r.want) << r.in;
}

TEST(EscrowBrand, FillSubstitutesNamedPlaceholdersOnly) {
    struct Row {
        std::string text, want;
    } rows[] = {
        {"{a} and {b}", "1 and 2"},     {"{a}{a}", "11"}, {"{unknown} {a}", "{unknown} 1"},
        {"unclosed {a", "unclosed {a"}, {"", ""},
    };
    for (const auto& r : rows) EXPECT_EQ(fill(r.text, {{"a", "1"}, {"b", "2"}}), r.want) << r.text;
}

TEST(EscrowBrand, LanguagesAndSupportLinks) {
    EXPECT_EQ(language_of("en"), Lang::en);
    EXPECT_EQ(language_of("DE"), Lang::de);
    EXPECT_EQ(language_of("fr"), std::nullopt);
    EXPECT_EQ(language_of("de-DE"), std::nullopt);
    EXPECT_EQ(support_href("help@acme.example"), "mailto:help@acme.example");
    EXPECT_EQ(support_href("https://acme.example/help"), "https://acme.example/help");
    EXPECT_EQ(support_href(""), "");
}

// Every text of every language is there, and uses the same placeholders as English.
TEST(EscrowBrand, TextTablesAreCompleteAndAgree) {
    auto fields = [](const Texts& t) {
        std::vector<std::string_view> v = {t.never_password_mail,
                                           t.never_password_portal,
                                           t.support,
                                           t.sent_by,
                                           t.notice_subject,
                                           t.notice_intro,
                                           t.notice_open_here,
                                           t.notice_button,
                                           t.notice_kept,
                                           t.notice_why,
                                           t.code_subject,
                                           t.code_line,
                                           t.code_valid,
                                           t.portal_name,
                                           t.footer,
                                           t.landing_title,
                                           t.landing_h1,
                                           t.landing_text,
                                           t.landing_code_text,
                                           t.landing_locked,
                                           t.send_code,
                                           t.have_code,
                                           t.code_title,
                                           t.code_h1,
                                           t.code_label,
                                           t.open_button,
                                           t.code_help,
                                           t.send_new_code,
                                           t.code_on_way,
                                           t.code_not_accepted,
                                           t.code_not_accepted_hint,
                                           t.code_exhausted,
                                           t.code_locked,
                                           t.no_subject,
                                           t.from,
                                           t.to,
                                           t.cc,
                                           t.date,
                                           t.available_until,
                                           t.images_blocked,
                                           t.too_complex,
                                           t.message_label,
                                           t.message_body_title,
                                           t.attachments,
                                           t.bytes,
                                           t.reply_heading,
                                           t.reply_label,
                                           t.attach_label,
                                           t.send_reply,
                                           t.sign_out,
                                           t.reply_sent,
                                           t.reply_rate_one_minute};
        for (const auto& p : {t.home,
                              t.not_found,
                              t.link_not_valid,
                              t.not_allowed,
                              t.gone,
                              t.bad_request,
                              t.refused_origin,
                              t.form_expired_link,
                              t.form_expired_session,
                              t.signed_out,
                              t.signed_out_done,
                              t.trouble,
                              t.unavailable,
                              t.unreadable,
                              t.no_attachment,
                              t.empty_reply,
                              t.no_reply_possible,
                              t.request_too_large,
                              t.reply_too_large,
                              t.reply_total,
                              t.reply_rate}) {
            v.push_back(p.title);
            v.push_back(p.text);
        }
        return v;
    };
    auto placeholders = [](std::string_view s) {
        std::set<std::string> out;
        static const std::regex re("\\{([a-z]+)\\}");
        const std::string str(s);
        for (auto it = std::sregex_iterator(str.begin(), str.end(), re); it != std::sregex_iterator(); ++it)
            out.insert((*it)[1]);
        return out;
    };
    const auto en = fields(texts(Lang::en));
    for (Lang l : kLanguages) {
        const auto other = fields(texts(l));
        ASSERT_EQ(other.size(), en.size());
        for (std::size_t i = 0; i < en.size(); ++i) {
            EXPECT_FALSE(other[i].empty()) << tag(l) << " text " << i;
            EXPECT_EQ(placeholders(other[i]), placeholders(en[i])) << tag(l) << " text " << i << ": " << other[i];
        }
    }
    EXPECT_NE(texts(Lang::de).notice_subject, texts(Lang::en).notice_subject);
}

}  // namespace
