// libFuzzer target for the path from a hostile remote reply to the bounce the sender gets: the
// SMTP client's ReplyParser (RFC 5321 4.2), the classification of the reply (delivery/classify.hpp)
// and the RFC 3464 report built from it and from the original message (delivery/dsn.hpp), with the
// envelope parsed from MAIL/RCPT lines the way the server stores it. Invariants: the outcome follows
// the reply code and the status class agrees with it; the bounce has CRLF line ends only, no NUL,
// parses as MIME, and its delivery-status part holds only the RFC's fields, one per line, with one
// Final-Recipient per failed recipient (a reply or address cannot inject fields).
#include <chrono>
#include <set>
#include <string>
#include <variant>

#include "delivery/classify.hpp"
#include "delivery/dsn.hpp"
#include "fuzz_common.hpp"
#include "message/view.hpp"
#include "smtp/command.hpp"
#include "smtp/reply.hpp"

using namespace mailward;

namespace {

std::vector<std::string_view> split_lines(std::string_view text, std::string_view& rest) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        const auto eol = text.find('\n');
        const std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
        if (line.empty()) break;
        lines.push_back(line);
    }
    rest = text;
    return lines;
}

void check_bounce(const std::string& body, std::size_t failed) {
    fuzz::check(body.find('\0') == std::string::npos, "no NUL in a bounce");
    for (std::size_t i = 0; i < body.size(); ++i) {
        if (body[i] == '\n') fuzz::check(i > 0 && body[i - 1] == '\r', "LF only after CR");
        if (body[i] == '\r') fuzz::check(i + 1 < body.size() && body[i + 1] == '\n', "CR only before LF");
    }
    fuzz::check(message::parse_message(body).has_value(), "a bounce parses as MIME");

    // The delivery-status part: from its Content-Type to the next boundary line.
    const std::string start = "Content-Type: message/delivery-status\r\n\r\n";
    const auto b = body.find(start);
    fuzz::check(b != std::string::npos, "a delivery-status part");
    const auto e = body.find("\r\n--", b + start.size());
    fuzz::check(e != std::string::npos, "the delivery-status part ends at a boundary");
    static const std::set<std::string> kFields = {"Reporting-MTA",
                                                  "X-Mailward-Queue-ID",
                                                  "Original-Envelope-Id",
                                                  "Arrival-Date",
                                                  "Final-Recipient",
                                                  "Original-Recipient",
                                                  "Action",
                                                  "Status",
                                                  "Remote-MTA",
                                                  "Diagnostic-Code",
                                                  "Last-Attempt-Date"};
    std::size_t finals = 0;
    std::string_view part = std::string_view(body).substr(b + start.size(), e - b - start.size());
    while (!part.empty()) {
        const auto eol = part.find("\r\n");
        const std::string_view line = part.substr(0, eol);
        part = eol == std::string_view::npos ? std::string_view() : part.substr(eol + 2);
        if (line.empty()) continue;
        const auto colon = line.find(": ");
        fuzz::check(colon != std::string_view::npos, "a delivery-status line is a field");
        const std::string name(line.substr(0, colon));
        fuzz::check(kFields.count(name) == 1, "only RFC 3464 fields");
        if (name == "Final-Recipient") ++finals;
    }
    fuzz::check(finals == failed, "one Final-Recipient per failed recipient");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint8_t bits = in.byte();
    std::string_view rest;
    // The envelope: MAIL and RCPT lines (parsed as the server would), then an empty line.
    const auto envelope_lines = split_lines(in.rest(), rest);
    // The remote reply's lines, then an empty line; the rest is the original message.
    const auto reply_lines = split_lines(rest, rest);
    const std::string original(rest);

    store::Envelope env;
    env.id = "fuzz0000000001";
    env.sender_mode = (bits & 16) ? "opportunistic" : "tls-or-escrow";  // protected: headers only
    env.ret = (bits & 1) ? store::DsnRet::hdrs : store::DsnRet::full;
    bool have_mail = false;
    smtp::ParseOptions opts;
    for (const auto line : envelope_lines) {
        auto parsed = smtp::parse_command(line, opts);
        auto* cmd = std::get_if<smtp::Command>(&parsed);
        if (!cmd) continue;
        if (cmd->verb == smtp::Verb::mail && !have_mail) {
            have_mail = true;
            env.sender = cmd->path.to_string();
            env.envid = cmd->mail.envid;
            env.smtputf8 = cmd->mail.smtputf8;
            env.requiretls = cmd->mail.requiretls;
            opts.transaction_smtputf8 = cmd->mail.smtputf8;
        } else if (cmd->verb == smtp::Verb::rcpt && have_mail && env.recipients.size() < 8) {
            store::Recipient r;
            r.address = cmd->path.to_string();
            r.orcpt = cmd->rcpt.orcpt;
            r.notify = cmd->rcpt.notify;
            env.recipients.push_back(r);
        }
    }
    if (env.recipients.empty()) return 0;

    smtp::ReplyParser parser;
    smtp::ReplyParser::Status st = smtp::ReplyParser::Status::need_more;
    for (const auto line : reply_lines) {
        st = parser.feed(line);
        if (st != smtp::ReplyParser::Status::need_more) break;
    }
    if (st != smtp::ReplyParser::Status::done) return 0;
    const smtp::Reply reply = parser.take();

    delivery::Evidence ev;
    ev.host = "mx.example.test";
    ev.required = (bits & 2) ? tls::Level::verify : tls::Level::may;
    if (bits & 4) {
        outbound::SessionError s;
        s.stage = (bits & 8) ? outbound::Stage::data_done : outbound::Stage::rcpt;
        s.reply = reply;
        ev.session = s;
    } else {
        ev.recipient = outbound::RecipientResult{0, reply, false};
    }
    const delivery::Classified c = delivery::classify(ev);
    fuzz::check(c.status.size() >= 5 && c.status[1] == '.', "status is X.Y.Z");
    fuzz::check(c.reason.find_first_of("\r\n") == std::string::npos, "reason is one line");
    if (reply.code >= 500) fuzz::check(c.outcome == delivery::Outcome::permanent, "5xx is permanent");
    if (reply.code >= 400 && reply.code < 500)
        fuzz::check(c.outcome == delivery::Outcome::temporary, "4xx is temporary");
    if (c.outcome == delivery::Outcome::permanent) fuzz::check(c.status[0] == '5', "a permanent status is 5.x.x");
    if (c.outcome == delivery::Outcome::temporary) fuzz::check(c.status[0] == '4', "a temporary status is 4.x.x");
    if (c.outcome != delivery::Outcome::permanent) return 0;

    std::vector<delivery::DsnRecipient> failed;
    for (std::size_t i = 0; i < env.recipients.size(); ++i)
        failed.push_back({i, c.status, c.diagnostic, ev.host, c.reason});
    std::size_t due = 0;
    for (const auto& r : env.recipients) due += delivery::wants_failure_dsn(env, r) ? 1 : 0;
    auto bounce = delivery::make_dsn(
        env, original, failed,
        {"relay.example.test", std::chrono::system_clock::time_point(std::chrono::seconds(1800000000)), std::nullopt});
    fuzz::check(bounce.has_value() == (due > 0), "a bounce exactly when one is due");
    if (bounce) check_bounce(bounce->body, due);
    return 0;
}
