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
