// The TLS report's renderings: a text summary for a terminal, the JSON object documented in
// docs/operations.md ("The TLS report"), and one self-contained HTML page (inline CSS and SVG drawn
// here, no script, no external URL). Every string from the data is HTML-escaped: domains, incident
// texts and hosts come from the network. The text summary shows domains through common::log_escape
// (no terminal control sequence gets through).
#include <fmt/format.h>

#include <algorithm>

#include "common/log_escape.hpp"
#include "common/timefmt.hpp"
#include "report/report.hpp"

namespace mailward::report {
namespace {

using nlohmann::json;

constexpr tls::Level kAll[kLevels] = {tls::Level::none, tls::Level::may, tls::Level::encrypt, tls::Level::verify,
                                      tls::Level::dane};
// Weak to strong: red, orange, yellow, green, blue; escrow grey.
constexpr const char* kColour[kLevels] = {"#c0392b", "#e67e22", "#d4ac0d", "#27ae60", "#2471a3"};
constexpr const char* kEscrowColour = "#7f8c8d";

std::string name(tls::Level l) { return std::string(tls::to_string(l)); }

json levels_json(const LevelCounts& c) {
    json j = json::object();
    for (auto l : kAll) j[name(l)] = c[static_cast<std::size_t>(l)];
    return j;
}

json level_or_null(const std::optional<tls::Level>& l) { return l ? json(name(*l)) : json(nullptr); }

std::string levels_text(const LevelCounts& c) {
    std::string s;
    for (auto l : kAll) s += (s.empty() ? "" : ", ") + name(l) + " " + std::to_string(c[static_cast<std::size_t>(l)]);
    return s;
}

std::string percent(std::size_t part, std::size_t whole) {
    if (whole == 0) return "-";
    return fmt::format("{:.0f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

std::string plural(std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

json render_json(const Report& r) {
    json days = json::array();
    for (const auto& d : r.days)
        days.push_back({{"date", d.date},
                        {"delivered", levels_json(d.delivered)},
                        {"escrowed", d.escrowed},
                        {"domains", levels_json(d.domains)}});
    json domains = json::array();
    for (const auto& d : r.domain_rows)
        domains.push_back({{"domain", d.domain},
                           {"attempts", d.attempts},
                           {"delivered", levels_json(d.delivered)},
                           {"weakest", level_or_null(d.weakest)},
                           {"strongest", level_or_null(d.strongest)},
                           {"escrowed", d.escrowed}});
    json changes = json::array();
    std::size_t learned_n = 0, raised_n = 0;
    for (const auto& c : r.changes) {
        (c.raised ? raised_n : learned_n)++;
        changes.push_back({{"domain", c.domain},
                           {"at", common::iso8601(c.at)},
                           {"change", c.raised ? "raised" : "learned"},
                           {"level", c.level},
                           {"from_level", c.raised ? json(c.from_level) : json(nullptr)}});
    }
    json incidents = json::array();
    for (const auto& i : r.incidents)
        incidents.push_back({{"domain", i.domain},
                             {"at", common::iso8601(i.at)},
                             {"kind", i.kind},
                             {"detail", i.detail},
                             {"host", i.host},
                             {"address", i.address}});
    json top = json::array();
    for (const auto& [d, n] : r.top_escrow_domains) top.push_back({{"domain", d}, {"escrowed", n}});
    const auto rate = r.escrow.read_rate();
    return {
        {"since", r.since},
        {"from", common::iso8601(r.from)},
        {"to", common::iso8601(r.to)},
        {"log",
         {{"lines", r.log_lines},
          {"skipped", r.skipped_lines},
          {"before_period", r.before_period},
          {"attempts", r.attempts},
          {"results", r.results}}},
        {"messages",
         {{"delivered", total(r.messages)}, {"by_level", levels_json(r.messages)}, {"escrowed", r.messages_escrowed}}},
        {"domains",
         {{"total", total(r.domains) + r.domains_unknown},
          {"by_level", levels_json(r.domains)},
          {"unknown", r.domains_unknown},
          {"rows", domains}}},
        {"days", days},
        {"learned",
         {{"total", r.learned_total},
          {"by_level", levels_json(r.learned)},
          {"learned_in_period", learned_n},
          {"raised_in_period", raised_n},
          {"changes", changes}}},
        {"incidents", incidents},
        {"escrow",
         {{"sealed", r.escrow.sealed},
          {"opened", r.escrow.opened},
          {"read", r.escrow.read},
          {"expired", r.escrow.expired},
          {"revoked", r.escrow.revoked},
          {"active", r.escrow.active},
          {"read_rate", rate ? json(*rate) : json(nullptr)}}},
        {"top_escrow_domains", top}};
}

std::string render_text(const Report& r) {
    std::string s =
        fmt::format("TLS report for the last {} ({} to {})\n", r.since, common::iso8601(r.from), common::iso8601(r.to));
    const auto delivered = total(r.messages);
    s += fmt::format("messages: {} delivered ({}), {} escrowed\n", delivered, levels_text(r.messages),
                     r.messages_escrowed);
    const auto domains = total(r.domains) + r.domains_unknown;
    s += fmt::format("recipient domains: {} by the weakest level seen ({}, unknown {})\n", domains,
                     levels_text(r.domains), r.domains_unknown);
    std::size_t raised = 0;
    for (const auto& c : r.changes) raised += c.raised ? 1 : 0;
    s += fmt::format("learned policy: {} ({}); in the period {} learned, {} raised\n",
                     plural(r.learned_total, "domain", "domains"), levels_text(r.learned), r.changes.size() - raised,
                     raised);
    s += fmt::format("incidents: {}\n", r.incidents.size());
    s += fmt::format("escrow: {} sealed, {} opened, {} read (read rate {}), {} expired, {} revoked, {} active\n",
                     r.escrow.sealed, r.escrow.opened, r.escrow.read, percent(r.escrow.read, r.escrow.sealed),
                     r.escrow.expired, r.escrow.revoked, r.escrow.active);
    if (!r.top_escrow_domains.empty()) {
        s += "domains that most often force escrow:\n";
        for (const auto& [d, n] : r.top_escrow_domains) s += fmt::format("  {:<40} {}\n", common::log_escape(d), n);
    }
    if (!r.domain_rows.empty()) {
        s += fmt::format("{:<40} {:>8} {:>9} {:<8} {:<8} {:>8}\n", "DOMAIN", "ATTEMPTS", "DELIVERED", "WEAKEST",
                         "STRONGEST", "ESCROWED");
        for (const auto& d : r.domain_rows)
            s += fmt::format("{:<40} {:>8} {:>9} {:<8} {:<8} {:>8}\n", common::log_escape(d.domain), d.attempts,
                             total(d.delivered), d.weakest ? name(*d.weakest) : "-",
                             d.strongest ? name(*d.strongest) : "-", d.escrowed);
    }
    s += fmt::format("delivery log: {} lines read, {} in the period, {} unreadable skipped\n", r.log_lines, r.attempts,
                     r.skipped_lines);
    return s;
}

namespace {

// A horizontal bar of shares (one rect per non-zero part), with a legend.
std::string share_bar(const std::string& id, const std::string& label, const LevelCounts& c, std::size_t extra,
                      const char* extra_name, const char* extra_colour) {
    const std::size_t whole = total(c) + extra;
    constexpr int kWidth = 600, kHeight = 28;
    std::string s = fmt::format(
        "<svg id=\"{}\" class=\"share\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
        "aria-label=\"{}\">",
        id, kWidth, kHeight, kWidth, kHeight, html_escape(label));
    if (whole == 0) {
        s += "<text x=\"4\" y=\"19\">no data in the period</text></svg>";
        return s;
    }
    double x = 0;
    auto part = [&](std::size_t n, const std::string& what, const char* colour) {
        if (n == 0) return;
        const double w = kWidth * static_cast<double>(n) / static_cast<double>(whole);
        s += fmt::format(
            "<rect class=\"seg\" data-part=\"{}\" data-count=\"{}\" x=\"{:.2f}\" y=\"0\" width=\"{:.2f}\" "
            "height=\"{}\" fill=\"{}\"><title>{}: {} ({})</title></rect>",
            what, n, x, w, kHeight, colour, what, n, percent(n, whole));
        x += w;
    };
    for (auto l : kAll) part(c[static_cast<std::size_t>(l)], name(l), kColour[static_cast<std::size_t>(l)]);
    part(extra, extra_name, extra_colour);
    return s + "</svg>";
}

std::string per_day_chart(const Report& r) {
    std::size_t most = 0;
    for (const auto& d : r.days) most = std::max(most, total(d.delivered) + d.escrowed);
    const int n = static_cast<int>(r.days.size());
    const int bar = std::clamp(720 / std::max(n, 1), 4, 40);
    const int gap = bar >= 10 ? 3 : 1;
    const int width = 40 + n * (bar + gap), height = 220, base = 190, top = 10;
    std::string s = fmt::format(
        "<svg id=\"per-day\" class=\"chart\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
        "aria-label=\"messages per day by TLS level\">",
        width, height, width, height);
    s += fmt::format("<line x1=\"36\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\"/>", base, width, base);
    s += fmt::format("<text x=\"2\" y=\"{}\" class=\"axis\">{}</text><text x=\"2\" y=\"{}\" class=\"axis\">0</text>",
                     top + 10, most, base);
    for (int i = 0; i < n; ++i) {
        const auto& d = r.days[static_cast<std::size_t>(i)];
        const int x = 40 + i * (bar + gap);
        s += fmt::format("<g class=\"day\" data-date=\"{}\"><title>{}: {} delivered, {} escrowed</title>", d.date,
                         d.date, total(d.delivered), d.escrowed);
        double y = base;
        auto seg = [&](std::size_t count, const std::string& what, const char* colour) {
            if (count == 0 || most == 0) return;
            const double h = (base - top) * static_cast<double>(count) / static_cast<double>(most);
            y -= h;
            s += fmt::format(
                "<rect class=\"seg\" data-part=\"{}\" data-count=\"{}\" x=\"{}\" y=\"{:.2f}\" width=\"{}\" "
                "height=\"{:.2f}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                what, count, x, y, bar, h, colour, d.date, what, count);
        };
        for (auto l : kAll)
            seg(d.delivered[static_cast<std::size_t>(l)], name(l), kColour[static_cast<std::size_t>(l)]);
        seg(d.escrowed, "escrowed", kEscrowColour);
        // A label under the first day, the last and every 7th.
        if (i == 0 || i == n - 1 || i % 7 == 0)
            s += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\">{}</text>", x, base + 14, d.date.substr(5));
        s += "</g>";
    }
    return s + "</svg>";
}

std::string legend() {
    std::string s = "<p class=\"legend\">";
    for (auto l : kAll)
        s += fmt::format("<span><i style=\"background:{}\"></i>{}</span>", kColour[static_cast<std::size_t>(l)],
                         name(l));
    s += fmt::format("<span><i style=\"background:{}\"></i>escrowed / unknown</span></p>", kEscrowColour);
    return s;
}

}  // namespace

std::string render_html(const Report& r) {
    const auto delivered = total(r.messages);
    const auto domains = total(r.domains) + r.domains_unknown;
    const std::size_t tls_msgs = delivered - r.messages[0];
    std::string s =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>Who supports TLS? mailward report</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}"
        "h1{margin-bottom:0}.period{color:#555;margin-top:.2em}"
        ".cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em}"
        ".card b{display:block;font-size:1.6em}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f2f2f2}"
        "td.n{text-align:right}.legend span{margin-right:1em}.legend i{display:inline-block;width:.9em;"
        "height:.9em;margin-right:.3em;vertical-align:middle}.axis{font-size:10px;fill:#555}"
        "svg{display:block;margin:.4em 0}</style></head><body>\n";
    s += "<h1>Who supports TLS?</h1>\n";
    s += fmt::format("<p class=\"period\">mailward report for the last {}: {} to {}</p>\n", html_escape(r.since),
                     common::iso8601(r.from), common::iso8601(r.to));
    s += "<div class=\"cards\">";
    s += fmt::format("<div class=\"card\" id=\"card-delivered\"><b>{}</b>messages delivered</div>", delivered);
    s += fmt::format("<div class=\"card\" id=\"card-tls\"><b>{}</b>of them over TLS</div>",
                     percent(tls_msgs, delivered));
    s += fmt::format("<div class=\"card\" id=\"card-escrowed\"><b>{}</b>escrowed</div>", r.messages_escrowed);
    s += fmt::format("<div class=\"card\" id=\"card-domains\"><b>{}</b>recipient domains</div>", domains);
    s += fmt::format("<div class=\"card\" id=\"card-incidents\"><b>{}</b>incidents</div>", r.incidents.size());
    s += "</div>\n";

    s += "<h2>Messages per day by TLS level reached</h2>\n" + legend() + per_day_chart(r) + "\n";
    s += "<h2>Share of recipient domains by TLS level</h2>\n"
         "<p>Each domain counts at the weakest level its MX hosts showed in the period.</p>\n";
    s += share_bar("domain-share", "recipient domains by TLS level", r.domains, r.domains_unknown, "unknown",
                   kEscrowColour) +
         "\n";
    s += "<h2>Share of messages by TLS level</h2>\n";
    s += share_bar("message-share", "messages by TLS level", r.messages, r.messages_escrowed, "escrowed",
                   kEscrowColour) +
         "\n";

    s += "<h2>Escrow</h2>\n";
    const auto rate = r.escrow.read_rate();
    s += fmt::format(
        "<p id=\"escrow-usage\">{} sealed, {} opened, {} read (read rate {}), {} expired, {} revoked, {} still "
        "active.</p>\n",
        r.escrow.sealed, r.escrow.opened, r.escrow.read, rate ? fmt::format("{:.0f}%", *rate * 100) : "-",
        r.escrow.expired, r.escrow.revoked, r.escrow.active);
    s += "<h3>Domains that most often force escrow</h3>\n";
    if (r.top_escrow_domains.empty()) {
        s += "<p>None in the period.</p>\n";
    } else {
        s += "<table id=\"top-escrow\"><tr><th>domain</th><th>escrowed</th></tr>";
        for (const auto& [d, n] : r.top_escrow_domains)
            s += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td></tr>", html_escape(d), n);
        s += "</table>\n";
    }

    s += "<h2>Incidents</h2>\n";
    if (r.incidents.empty()) {
        s += "<p>None in the period.</p>\n";
    } else {
        s += "<table id=\"incidents\"><tr><th>time</th><th>domain</th><th>kind</th><th>host</th><th>detail</th></tr>";
        for (const auto& i : r.incidents)
            s += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", common::iso8601(i.at),
                             html_escape(i.domain), html_escape(i.kind),
                             html_escape(i.host + (i.address.empty() ? "" : " [" + i.address + "]")),
                             html_escape(i.detail));
        s += "</table>\n";
    }

    s += fmt::format("<h2>Learned policy</h2>\n<p>{} learned now ({}).</p>\n",
                     plural(r.learned_total, "domain", "domains"), html_escape(levels_text(r.learned)));
    if (!r.changes.empty()) {
        s += "<table id=\"changes\"><tr><th>time</th><th>domain</th><th>change</th><th>level</th></tr>";
        for (const auto& c : r.changes)
            s += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", common::iso8601(c.at),
                             html_escape(c.domain), c.raised ? "raised from " + html_escape(c.from_level) : "learned",
                             html_escape(c.level));
        s += "</table>\n";
    }

    s += "<h2>Recipient domains</h2>\n";
    if (r.domain_rows.empty()) {
        s += "<p>No deliveries in the period.</p>\n";
    } else {
        s += "<table id=\"domains\"><tr><th>domain</th><th>attempts</th><th>delivered</th><th>weakest</th>"
             "<th>strongest</th><th>escrowed</th></tr>";
        for (const auto& d : r.domain_rows)
            s += fmt::format(
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td "
                "class=\"n\">{}</td></tr>",
                html_escape(d.domain), d.attempts, total(d.delivered), d.weakest ? name(*d.weakest) : "-",
                d.strongest ? name(*d.strongest) : "-", d.escrowed);
        s += "</table>\n";
    }
    s += fmt::format("<p class=\"period\">Delivery log: {} lines read, {} in the period, {} unreadable skipped.</p>\n",
                     r.log_lines, r.attempts, r.skipped_lines);
    return s + "</body></html>\n";
}

}  // namespace mailward::report
