// Every composed message (escrow notices, code mails, replies: all go through compose_message) has
// CRLF line ends only, whatever the caller's text holds: the 2023 SMTP smuggling sequences in the
// text, the HTML, an attachment, the subject and the display name come out without a bare CR or LF.
#include <gtest/gtest.h>

#include "message/compose.hpp"
#include "smtp/data_encode.hpp"

using namespace mailward;
using namespace mailward::message;

TEST(ComposeWire, NoBareCrOrLfWhateverTheInput) {
    const std::string smuggle[] = {"a\n.\nMAIL FROM:<x@evil.test>\n",
                                   "a\r.\rb",
                                   "a\r.\nb",
                                   "a\n.\rb",
                                   "a\r\n.\nb",
                                   "a\n.\r\nb",
                                   "bare\rCR",
                                   "bare\nLF",
                                   "ends in LF\n",
                                   "ends in CR\r"};
    for (const auto& s : smuggle) {
        SCOPED_TRACE(s);
        ComposeInput in;
        in.from = "=?utf-8?q?Mallory=0D=0A=2E=0D=0A?= <mallory@example.org>";
        in.to = "bob@example.net";
        in.subject = "re: " + s;
        in.text = s;
        in.html = "<p>" + s + "</p>";
        in.attachments.push_back(Attachment{});
        in.attachments.back().filename = "x.txt";
        in.attachments.back().content_type = "text/plain";
        in.attachments.back().data = s;
        auto out = compose_message(in);
        ASSERT_TRUE(out) << out.error().message();
        const auto scan = smtp::scan_body(*out);
        EXPECT_TRUE(scan.crlf_only) << *out;
        EXPECT_FALSE(scan.nul);
    }
}
