// Limits on the portal's secure replies (see reply_limits.hpp).
#include "escrow/reply_limits.hpp"

#include <algorithm>
#include <charconv>

namespace mailward::escrow {
namespace {

using Seconds = std::chrono::seconds;

// How long until the window holds fewer than limit of the times in (sorted ascending, all in the
// window); 0 when it already does.
Seconds wait_for_slot(const std::vector<store::EscrowTime>& in_window, std::size_t limit, store::EscrowTime now,
                      Seconds window) {
    if (in_window.size() < limit) return Seconds(0);
    const auto frees_at = in_window[in_window.size() - limit] + window;
    const auto wait = std::chrono::ceil<Seconds>(frees_at - now);
    return std::max(wait, Seconds(1));
}

// The number at the start of part ("1234 bytes" -> 1234), or nullopt.
std::optional<std::size_t> number_in(std::string_view part) {
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
    if (ec != std::errc() || p == part.data()) return std::nullopt;
    return n;
}

}  // namespace

ReplyDecision check_reply(const std::vector<PastReply>& past, std::string_view session, std::size_t bytes,
                          store::EscrowTime now, const ReplyLimits& limits) {
    std::size_t used = 0;
    std::vector<store::EscrowTime> message_times, session_times;
    for (const auto& r : past) {
        used += r.bytes;
        if (r.at + limits.window <= now) continue;  // out of the window (or from the future: counted)
        message_times.push_back(r.at);
        if (!session.empty() && r.session == session) session_times.push_back(r.at);
    }
    if (used >= limits.total_bytes || bytes > limits.total_bytes - used) return {ReplyVerdict::total_exhausted, {}};
    std::sort(message_times.begin(), message_times.end());
    std::sort(session_times.begin(), session_times.end());
    const Seconds wait = std::max(wait_for_slot(message_times, limits.per_message, now, limits.window),
                                  wait_for_slot(session_times, limits.per_session, now, limits.window));
    if (wait > Seconds(0)) return {ReplyVerdict::too_many, wait};
    return {};
}

std::string session_tag(std::string_view session_id_hash) { return std::string(session_id_hash.substr(0, 12)); }

std::string reply_detail(std::string_view queue_id, std::size_t files, std::size_t bytes, std::string_view session) {
    return "queue " + std::string(queue_id) + ", " + std::to_string(files) + " attachment(s), " +
           std::to_string(bytes) + " bytes, session " + std::string(session);
}

std::optional<PastReply> past_reply_of(const store::EscrowAuditEntry& e) {
    if (e.event != store::escrow_event::reply_sent) return std::nullopt;
    PastReply r;
    r.at = e.at;
    std::string_view d = e.detail;
    while (!d.empty()) {
        auto comma = d.find(", ");
        std::string_view part = d.substr(0, comma);
        d = comma == std::string_view::npos ? std::string_view() : d.substr(comma + 2);
        if (part.ends_with(" bytes")) {
            if (auto n = number_in(part)) r.bytes = *n;
        } else if (part.rfind("session ", 0) == 0) {
            r.session = std::string(part.substr(8));
        }
    }
    return r;
}

}  // namespace mailward::escrow
