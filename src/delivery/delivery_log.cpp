// Appends JSON lines to the delivery log, one flush per line so that a crash loses at most the line
// being written; formats the main log's outcome line; reads the log back (one parser for every
// command that scans it).
#include "delivery/delivery_log.hpp"

#include <fcntl.h>
#include <fmt/format.h>

#include <fstream>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "common/ascii.hpp"
#include "common/log_escape.hpp"
#include "common/timefmt.hpp"

namespace mailward::delivery {

DeliveryLog::~DeliveryLog() {
    if (f_) std::fclose(f_);
}

bool DeliveryLog::open(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    f_ = ::fdopen(fd, "a");
    if (!f_) {
        ::close(fd);
        return false;
    }
    return true;
}

void DeliveryLog::write(const std::string& json_line) {
    std::lock_guard lk(mu_);
    if (!f_) {
        spdlog::info("delivery {}", json_line);
        return;
    }
    std::fwrite(json_line.data(), 1, json_line.size(), f_);
    std::fputc('\n', f_);
    std::fflush(f_);
}

std::string format_outcome(const OutcomeLine& o) {
    using common::log_escape;
    std::string relay = "none";
    if (!o.relay_host.empty()) {
        relay = log_escape(o.relay_host);
        if (!o.relay_address.empty()) relay += "[" + log_escape(o.relay_address) + "]:" + std::to_string(o.port);
    }
    std::string tls = o.level.empty() ? std::string("none") : log_escape(o.level);
    if (!o.level.empty()) {
        tls += o.tls_version.empty() ? std::string("/none")
                                     : "/" + log_escape(o.tls_version) + "/" + log_escape(o.tls_cipher);
    }
    const double d = o.delay_seconds > 0 ? o.delay_seconds : 0;
    const std::string delay = d < 100 ? fmt::format("{:.2f}", d) : fmt::format("{:.0f}", d);
    if (!o.route.empty()) relay += ", route=" + log_escape(o.route);
    return fmt::format("{}: to=<{}>, relay={}, delay={}, tls={}, status={} ({})", log_escape(o.queue_id),
                       log_escape(o.recipient), relay, delay, tls, o.status, log_escape(o.text));
}

std::string format_attempt(const AttemptLine& a) {
    nlohmann::json j = {{"time", common::iso8601(a.time)}, {"queue_id", a.queue_id}, {"recipient", a.recipient}};
    if (!a.route.empty()) j["route"] = a.route;
    j["mx"] = a.mx;
    j["address"] = a.address;
    j["required_level"] = tls::to_string(a.required_level);
    j["level_reasons"] = a.level_reasons;
    j["tls"] = a.tls;
    j["result"] = a.result;
    j["status"] = a.status;
    j["reply"] = a.reply;
    j["reason"] = a.reason;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

std::optional<tls::Level> level_of(const nlohmann::json& t, const std::string& result, const std::string& mx) {
    if (!t.is_object()) {
        if (mx.empty()) return std::nullopt;  // no host was talked to
        if (result == "delivered" || result == "deferred-tls-policy") return tls::Level::none;
        return std::nullopt;
    }
    const std::string proto = t.value("protocol", "");
    if ((proto != "TLSv1.2" && proto != "TLSv1.3") || !t.value("forward_secret", true)) return tls::Level::may;
    if (t.value("dane_matched", false)) return tls::Level::dane;
    if (t.value("chain_valid", false) && t.value("name_matched", false)) return tls::Level::verify;
    return tls::Level::encrypt;
}

std::string str(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::optional<LogEntry> parse_log_line(std::string_view text) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    auto t = j.find("time");
    auto r = j.find("recipient");
    if (t == j.end() || !t->is_string() || r == j.end() || !r->is_string()) return std::nullopt;
    const auto at = common::parse_iso8601(t->get<std::string>());
    if (!at) return std::nullopt;
    LogEntry e;
    e.time = *at;
    e.recipient = r->get<std::string>();
    const auto atsign = e.recipient.rfind('@');
    if (atsign == std::string::npos || atsign + 1 == e.recipient.size()) return std::nullopt;
    e.domain = common::ascii::lower(e.recipient.substr(atsign + 1));
    e.queue_id = str(j, "queue_id");
    e.mx = common::ascii::lower(str(j, "mx"));
    e.route = str(j, "route");
    e.result = str(j, "result");
    if (auto f = j.find("tls"); f != j.end() && f->is_object()) e.tls = *f;
    e.level_seen = level_of(e.tls, e.result, e.mx);
    return e;
}

Result<LogScan> read_log(std::istream& in, std::chrono::system_clock::time_point from,
                         const std::function<void(const LogEntry&)>& each) {
    LogScan out;
    std::string text;
    while (std::getline(in, text)) {
        if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
        ++out.lines;
        auto e = parse_log_line(text);
        if (!e) {
            ++out.skipped;
            continue;
        }
        if (e->time < from) {
            ++out.before;
            continue;
        }
        each(*e);
    }
    if (in.bad()) return common::Errc::io_error;
    return out;
}

Result<LogScan> read_log(const std::filesystem::path& path, std::chrono::system_clock::time_point from,
                         const std::function<void(const LogEntry&)>& each) {
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (st.type() == std::filesystem::file_type::not_found) return LogScan{};  // nothing delivered yet
    if (ec || st.type() != std::filesystem::file_type::regular) return common::Errc::io_error;
    std::ifstream in(path);
    if (!in) return common::Errc::io_error;
    return read_log(in, from, each);
}

}  // namespace mailward::delivery
