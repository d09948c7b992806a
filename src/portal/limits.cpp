// The portal's connection limits (see limits.hpp).
#include "portal/limits.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace mailward::portal {

std::optional<std::string> address_key(std::string_view ip) {
    const std::string text(ip);
    std::array<unsigned char, 16> a{};
    char out[INET6_ADDRSTRLEN] = {};
    if (::inet_pton(AF_INET, text.c_str(), a.data()) == 1) {
        if (::inet_ntop(AF_INET, a.data(), out, sizeof out) == nullptr) return std::nullopt;
        return std::string(out);
    }
    if (::inet_pton(AF_INET6, text.c_str(), a.data()) != 1) return std::nullopt;
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(std::begin(kMapped), std::end(kMapped), a.begin())) {
        if (::inet_ntop(AF_INET, a.data() + 12, out, sizeof out) == nullptr) return std::nullopt;
        return std::string(out);
    }
    for (std::size_t i = 8; i < 16; ++i) a[i] = 0;  // the /64
    if (::inet_ntop(AF_INET6, a.data(), out, sizeof out) == nullptr) return std::nullopt;
    return std::string(out) + "/64";
}

ConnectionVerdict ConnectionLimiter::admit(const std::string& key) {
    std::lock_guard lock(mutex_);
    if (served_ >= rules_.total) return ConnectionVerdict::drop;
    auto& c = by_key_[key];
    if (c.served < rules_.per_address) {
        ++c.served;
        ++served_;
        return ConnectionVerdict::serve;
    }
    if (c.refusing < rules_.refusals_per_address && refusing_ < rules_.refusals_total) {
        ++c.refusing;
        ++refusing_;
        return ConnectionVerdict::refuse;
    }
    return ConnectionVerdict::drop;  // c.served > 0 here, so the entry stays meaningful
}

ConnectionLimiter::Opened ConnectionLimiter::open(const std::string& key, std::int64_t now) {
    std::lock_guard lock(mutex_);
    Opened out;
    std::uint64_t victim = 0;
    if (served_ >= rules_.total) {
        auto it = by_key_.find(key);
        const std::size_t mine = it == by_key_.end() ? 0 : it->second.served;
        if (mine >= rules_.per_address || (victim = pick_victim(mine)) == 0) return out;  // drop
        auto& v = tracked_.at(victim);
        v.replaced = true;
        give_back(v.key);
    }
    auto& c = by_key_[key];
    if (c.served < rules_.per_address) {
        ++c.served;
        ++served_;
        out.verdict = ConnectionVerdict::serve;
        out.id = ++next_id_;
        out.victim = victim;
        tracked_.emplace(out.id, Tracked{key, true, now, false});
        return out;
    }
    if (c.refusing < rules_.refusals_per_address && refusing_ < rules_.refusals_total) {
        ++c.refusing;
        ++refusing_;
        out.verdict = ConnectionVerdict::refuse;
    }
    return out;
}

// The longest-waiting connection of the key holding the most, at least mine + 2; 0: none.
std::uint64_t ConnectionLimiter::pick_victim(std::size_t mine) const {
    std::uint64_t best = 0;
    std::size_t best_count = 0;
    std::int64_t best_since = 0;
    for (const auto& [id, t] : tracked_) {
        if (!t.waiting || t.replaced) continue;
        auto it = by_key_.find(t.key);
        const std::size_t count = it == by_key_.end() ? 0 : it->second.served;
        if (count < mine + 2) continue;
        if (best == 0 || count > best_count || (count == best_count && t.since < best_since)) {
            best = id;
            best_count = count;
            best_since = t.since;
        }
    }
    return best;
}

void ConnectionLimiter::give_back(const std::string& key) {
    auto it = by_key_.find(key);
    if (it == by_key_.end() || it->second.served == 0) return;
    --it->second.served;
    --served_;
    if (it->second.served == 0 && it->second.refusing == 0) by_key_.erase(it);
}

void ConnectionLimiter::waiting(std::uint64_t id, bool waiting, std::int64_t now) {
    std::lock_guard lock(mutex_);
    auto it = tracked_.find(id);
    if (it == tracked_.end()) return;
    it->second.waiting = waiting;
    if (waiting) it->second.since = now;
}

void ConnectionLimiter::close(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = tracked_.find(id);
    if (it == tracked_.end()) return;
    if (!it->second.replaced) give_back(it->second.key);
    tracked_.erase(it);
}

void ConnectionLimiter::release(const std::string& key, ConnectionVerdict verdict) {
    if (verdict == ConnectionVerdict::drop) return;
    std::lock_guard lock(mutex_);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return;  // never admitted: a caller's bug, but nothing to undo
    auto& c = it->second;
    if (verdict == ConnectionVerdict::serve && c.served > 0) {
        --c.served;
        --served_;
    } else if (verdict == ConnectionVerdict::refuse && c.refusing > 0) {
        --c.refusing;
        --refusing_;
    }
    if (c.served == 0 && c.refusing == 0) by_key_.erase(it);
}

std::size_t ConnectionLimiter::served() const {
    std::lock_guard lock(mutex_);
    return served_;
}

std::size_t ConnectionLimiter::served(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = by_key_.find(key);
    return it == by_key_.end() ? 0 : it->second.served;
}

}  // namespace mailward::portal
