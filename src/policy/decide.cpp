// decide(): every policy source -> required level, action and reasons (the rules are listed in
// decide.hpp). Inputs come from trusted code (store, resolver, MTA-STS cache, config); nothing here
// can fail, throw on bad data, or send anything in the clear that a source forbids.
// RFC 8689 sections 4.2.1 and 5, RFC 8461 section 5, RFC 7672 section 2.2.
#include "policy/decide.hpp"

#include "common/timefmt.hpp"

namespace mailward::policy {
namespace {

using tls::Level;
using Mode = config::SenderMode;

std::string name(Level l) { return std::string(tls::to_string(l)); }
std::string mode_name(Mode m) { return std::string(config::to_string(m)); }
std::string date_of(TimePoint t) { return common::iso8601(t).substr(0, 10); }  // "2026-11-20"

std::string learned_reason(const LearnedPolicy& l) {
    std::string r = "learned: " + name(l.level) + " (confirmed " + date_of(l.last_confirmed);
    if (const auto n = l.mx_hosts(); n > 0) r += ", " + std::to_string(n) + " MX host" + (n == 1 ? "" : "s");
    return r + ")";
}

std::string override_text(const Override& o) {
    return "admin override to " + name(o.level) +
           (o.expires ? " until " + common::iso8601(*o.expires) : std::string(" (no expiry)"));
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out.empty() ? "(none)" : out;
}

// Fills in the action and its one-line summary (also appended to the reasons).
Decision& finish(Decision& d, Action a, std::string why, std::string status = {}) {
    d.action = a;
    d.plaintext_allowed = a == Action::deliver && d.level <= Level::may;
    d.status = std::move(status);
    d.summary =
        std::string(to_string(a)) + (a == Action::deliver ? " at " + name(d.level) : std::string()) + ": " + why;
    d.reasons.push_back(std::move(why));
    return d;
}

}  // namespace

std::string_view to_string(DomainCapability c) {
    switch (c) {
        case DomainCapability::tls_capable: return "tls_capable";
        case DomainCapability::partial_tls: return "partial_tls";
        case DomainCapability::no_tls: return "no_tls";
        case DomainCapability::unknown: return "unknown";
    }
    return "unknown";
}

std::string_view to_string(Action a) {
    switch (a) {
        case Action::deliver: return "deliver";
        case Action::escrow: return "escrow";
        case Action::bounce: return "bounce";
        case Action::defer: return "defer";
    }
    return "defer";
}

std::optional<tls::Level> static_level(const config::PolicyConfig& cfg, std::string_view domain) {
    auto it = cfg.domains.find(std::string(domain));
    if (it == cfg.domains.end()) return std::nullopt;
    return tls::parse_level(it->second);
}

Decision decide(const PolicyInputs& in, const Situation& situation, TimePoint now) {
    Decision d;
    auto& why = d.reasons;
    const auto* before = std::get_if<BeforeAttempt>(&situation);
    const auto* failed = std::get_if<AfterTlsFailure>(&situation);

    // 1. What the domain requires.
    Level domain = Level::may;
    auto require = [&](Level l, std::string reason) {
        domain = strictest(domain, l);
        why.push_back(std::move(reason));
    };
    if (in.static_level) require(*in.static_level, "static policy: " + name(*in.static_level));
    if (in.learned) require(in.learned->level, learned_reason(*in.learned));
    if (in.dane_usable) require(Level::dane, "DANE: secure TLSA for every MX host (RFC 7672)");
    const bool sts_enforce = in.mta_sts && in.mta_sts->mode == MtaStsPolicy::Mode::enforce;
    bool sts_in_effect = sts_enforce;
    if (sts_enforce) {
        require(Level::verify, "MTA-STS enforce: verify, mx " + joined(in.mta_sts->mx) + " (RFC 8461)");
    } else if (in.mta_sts && in.mta_sts->mode == MtaStsPolicy::Mode::testing) {
        why.push_back("MTA-STS testing: failures are reported, not enforced (RFC 8461 section 5)");
    }
    if (in.preload) require(*in.preload, "preload list: " + name(*in.preload));
    const bool learned_tls = in.learned && in.learned->level >= Level::encrypt;
    if (before) {
        switch (before->capability) {
            case DomainCapability::tls_capable:
                require(Level::encrypt, in.mode == Mode::opportunistic
                                            ? "every MX host does TLS: forced TLS (the ratchet protects everyone)"
                                            : "every MX host does TLS: forced TLS");
                break;
            case DomainCapability::partial_tls:
                why.push_back("only some MX hosts do TLS: the domain is not TLS-capable");
                break;
            case DomainCapability::no_tls:
                why.push_back(learned_tls ? "no MX host offers TLS now although the domain is learned at " +
                                                name(in.learned->level) + ": possible downgrade attack"
                                          : std::string("no MX host does TLS"));
                break;
            case DomainCapability::unknown: why.push_back("TLS support of the MX hosts unknown (not probed)"); break;
        }
    }
    if (failed) require(Level::encrypt, "TLS failed to a domain known to support it: never plaintext");

    // 2. An active admin override replaces what the domain requires.
    // The admin's floor: what "TLS-Required: No" may never go below.
    Level admin_floor = in.static_level.value_or(Level::may);
    if (in.override) {
        if (in.override->active(now)) {
            admin_floor = in.override->level;
            std::string r = override_text(*in.override) + ": " + in.override->reason;
            if (!in.override->set_by.empty()) r += " (set by " + in.override->set_by + ")";
            if (in.override->level < domain) r += "; lowers " + name(domain);
            domain = in.override->level;
            sts_in_effect = false;
            why.push_back(std::move(r));
        } else {
            why.push_back(override_text(*in.override) + " has expired: ignored");
        }
    }

    // 3. The message: REQUIRETLS, or TLS-Required: No (RFC 8689) from a sender with the right.
    Level level = domain;
    bool header_lowered = false;
    if (in.requiretls) {
        level = strictest(level, Level::verify);
        why.push_back("REQUIRETLS (RFC 8689): verify");
    }
    if (in.tls_required_no) {
        const auto effect = tls_required_no_effect(in.requiretls, in.tls_optional);
        if (!effect.honoured) {
            d.tls_required_no_ignored = true;
            why.push_back("TLS-Required: No ignored: " + effect.why);
        } else {
            level = admin_floor;
            sts_in_effect = false;
            header_lowered = admin_floor <= Level::may;
            why.push_back("TLS-Required: No (RFC 8689 section 5; " + effect.why + "): " +
                          (header_lowered ? std::string("lowered to may")
                                          : "lowered only to the admin's floor " + name(admin_floor)));
        }
    }
    // The route's floor: the administrator's word for its next hop, under everything above.
    if (in.route) {
        if (in.route->floor && *in.route->floor > level) {
            level = *in.route->floor;
            why.push_back("route " + in.route->name + ": TLS at least " + name(*in.route->floor));
        } else {
            why.push_back("route " + in.route->name + ": its next hop instead of the MX hosts");
        }
    }
    const Level required_by_sources = level;  // everything but the sender mode

    // 4. The sender.
    const bool never_plain = (in.mode == Mode::tls_only || in.mode == Mode::tls_or_escrow) && !header_lowered;
    switch (in.mode) {
        case Mode::tls_only:
        case Mode::tls_or_escrow:
            if (never_plain) {
                level = strictest(level, Level::encrypt);
                why.push_back("sender mode " + mode_name(in.mode) + ": never plaintext");
            } else {
                why.push_back("sender mode " + mode_name(in.mode) + ", lowered by TLS-Required: No");
            }
            break;
        case Mode::escrow_always: why.push_back("sender mode escrow-always"); break;
        case Mode::opportunistic: why.push_back("sender mode opportunistic"); break;
    }
    d.level = level;
    if (sts_in_effect && in.route) {
        why.push_back("MTA-STS mx patterns do not apply to route " + in.route->name + " (its level does)");
    } else if (sts_in_effect) {
        d.mx_patterns = in.mta_sts->mx;
    }

    // Actions.
    if (in.mode == Mode::escrow_always)
        return finish(d, Action::escrow, "sender mode escrow-always: every message goes to escrow");

    const bool mx_ok = in.mx_authenticated || in.dane_usable || sts_enforce;
    if (in.requiretls && !mx_ok) {
        const std::string r = "REQUIRETLS: the MX set of " + in.domain +
                              " is neither DNSSEC-secure nor covered by MTA-STS enforce (RFC 8689 section 4.2.1)";
        if (in.mode == Mode::tls_or_escrow) return finish(d, Action::escrow, r + "; escrow");
        return finish(d, Action::bounce, r, "5.7.30");
    }

    if (before) {
        const auto cap = before->capability;
        if (level <= Level::may) return finish(d, Action::deliver, "TLS if offered, plaintext allowed");
        // A route: what is known of the domain's own MX hosts says nothing of the next hop; the
        // level is required there, and a TLS failure comes back as AfterTlsFailure.
        if (in.route) return finish(d, Action::deliver, "TLS required to the next hop of route " + in.route->name);
        if (required_by_sources >= Level::encrypt) {
            // A source other than the sender requires TLS: attempt at that level; a failure comes
            // back as AfterTlsFailure (deferred, never plaintext), which is how a downgrade is
            // caught.
            if (cap == DomainCapability::partial_tls) {
                d.only_tls_hosts = true;
                return finish(d, Action::deliver, "TLS required: only the MX hosts that do TLS are used");
            }
            return finish(d, Action::deliver, "TLS required");
        }
        // Only the sender mode requires TLS (tls-only, tls-or-escrow).
        switch (cap) {
            case DomainCapability::tls_capable: return finish(d, Action::deliver, "forced TLS");
            case DomainCapability::partial_tls:
                d.only_tls_hosts = true;
                return finish(d, Action::deliver, "forced TLS: only the MX hosts that do TLS are used");
            case DomainCapability::no_tls:
                if (in.mode == Mode::tls_or_escrow)
                    return finish(d, Action::escrow,
                                  "the mail servers of " + in.domain + " do not support TLS: escrow");
                return finish(d, Action::bounce,
                              "the mail servers of " + in.domain +
                                  " do not support TLS and the sender's mode tls-only does not "
                                  "allow plaintext",
                              "5.7.4");
            case DomainCapability::unknown:
                d.probe_needed = true;
                return finish(d, Action::defer, "probe every MX host of " + in.domain + " before the first delivery");
        }
    }

    // After a TLS failure.
    const auto& f = failed ? *failed : AfterTlsFailure{};
    if (level <= Level::may) return finish(d, Action::deliver, "TLS if offered, plaintext allowed");
    const TimePoint first = f.first_failure == TimePoint{} ? f.received_at : f.first_failure;
    const TimePoint escrow_at = first + in.escrow_after;
    const TimePoint lifetime_end = f.received_at + in.max_queue_lifetime;
    if (in.mode == Mode::tls_or_escrow) {
        if (now >= escrow_at || now >= lifetime_end)
            return finish(d, Action::escrow,
                          "TLS failing since " + common::iso8601(first) + " (escrow_after " +
                              common::format_duration(in.escrow_after) + "): escrow");
        return finish(d, Action::defer, "TLS failed: retry; escrow from " + common::iso8601(escrow_at));
    }
    if (now >= lifetime_end)
        return finish(d, Action::bounce,
                      "TLS could not be established within the queue lifetime (" +
                          common::format_duration(in.max_queue_lifetime) + ")",
                      "5.7.5");
    return finish(d, Action::defer, "TLS failed: retry; bounce from " + common::iso8601(lifetime_end));
}

}  // namespace mailward::policy
