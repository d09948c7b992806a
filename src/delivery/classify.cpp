// Classification of every delivery outcome: see classify.hpp. The rules, in order:
// hosts refused before any connection (a failed address lookup in a signed MX set, a loop);
// transactions the SMTP client refused itself before MAIL (SIZE, 8BITMIME, SMTPUTF8, REQUIRETLS,
// NUL: permanent, with no remote diagnostic);
// routing errors (null MX, NXDOMAIN permanent; DNS trouble temporary); TLS failures at a level of
// encrypt or higher are tls_policy (a TLS close or handshake error is NOT a network error: it must
// never be retried as plaintext nor requeued forever as "connection lost"); network errors and
// timeouts temporary; server replies by their first digit (4xx temporary, 5xx permanent), except
// a 5xx greeting or EHLO which condemns the host, not the message (RFC 5321 3.1: try the next MX).
#include "delivery/classify.hpp"

#include "dns/resolver.hpp"
#include "outbound/route.hpp"

namespace mailward::delivery {
using outbound::Refusal;
using outbound::RouteErrc;
using outbound::SessionError;
using outbound::Stage;
using outbound::TlsFault;

namespace {

std::string reply_status(const smtp::Reply& r) {
    if (!r.enhanced.empty()) return r.enhanced;
    if (r.code >= 500) return "5.0.0";
    if (r.code >= 400) return "4.0.0";
    return "2.0.0";
}

Classified from_reply(const smtp::Reply& r, const std::string& host, std::string_view what) {
    Classified c;
    c.status = reply_status(r);
    c.diagnostic = "smtp; " + r.summary();
    c.reason = host + " said " + std::string(what) + ": " + r.summary();
    if (r.positive()) c.outcome = Outcome::delivered;
    else if (r.transient()) c.outcome = Outcome::temporary;
    else c.outcome = Outcome::permanent;
    return c;
}

// What the SMTP client refused itself, before MAIL (RFC 3463 statuses; always permanent: the same
// message meets the same refusal at the next try).
struct RefusalRule {
    Refusal refusal;
    const char* status;
    const char* text;  // when the client gave no detail
};
constexpr RefusalRule kRefusals[] = {
    {Refusal::size_exceeded, "5.3.4", "message size exceeds the server's limit"},
    {Refusal::no_8bitmime, "5.6.3", "the next hop does not support 8BITMIME"},
    {Refusal::no_smtputf8, "5.6.7", "the next hop does not support SMTPUTF8"},
    {Refusal::no_requiretls, "5.7.30", "REQUIRETLS not supported by the next hop"},
    {Refusal::nul_octet, "5.6.0", "the message holds a NUL octet"},
};

// Refused here, not by the host: no diagnostic (the host said nothing), the reason says so.
Classified refused_here(const SessionError& s, const std::string& host) {
    Classified c;
    c.outcome = Outcome::permanent;
    c.status = "5.0.0";
    std::string text = "refused before MAIL";
    for (const auto& r : kRefusals) {
        if (r.refusal != s.refusal) continue;
        c.status = r.status;
        text = r.text;
    }
    c.reason = "not sent to " + host + " (" + c.status + "): " + (s.detail.empty() ? text : s.detail);
    return c;
}

bool tls_stage(Stage s) { return s == Stage::starttls || s == Stage::tls_handshake || s == Stage::tls_policy; }

}  // namespace

std::string_view to_string(Outcome o) {
    switch (o) {
        case Outcome::delivered: return "delivered";
        case Outcome::temporary: return "deferred";
        case Outcome::permanent: return "bounced";
        case Outcome::tls_policy: return "deferred-tls-policy";
    }
    return "?";
}

Classified classify(const Evidence& e) {
    Classified c;
    switch (e.refusal) {
        case HopRefusal::none: break;
        case HopRefusal::address_lookup_failed:
            // RFC 7672 2.1.1: not used with the addresses that did resolve (that would skip TLSA,
            // a silent DANE downgrade); another MX may be fine, else the message waits.
            c.outcome = Outcome::temporary;
            c.status = "4.4.3";
            c.try_next_host = true;
            c.reason = e.host + ": address lookup failed in a DNSSEC-signed MX set (" + e.route_detail +
                       "): host not used, DANE status unknown";
            return c;
        case HopRefusal::loops_back:
            // Postfix's "mail for X loops back to myself" (RFC 3463 5.4.6 routing loop). The next
            // MX may be elsewhere; when none is, the message bounces.
            c.outcome = Outcome::permanent;
            c.status = "5.4.6";
            c.try_next_host = true;
            c.reason = "mail for " + e.host + " loops back to myself: " + e.route_detail;
            return c;
        case HopRefusal::no_addresses:
            c.outcome = Outcome::temporary;
            c.status = "4.4.3";
            c.reason = e.host + ": " + e.route_detail;
            return c;
        case HopRefusal::tlsa_lookup_failed:
            // RFC 7672 2.2: a host whose TLSA records cannot be had is not used (DANE status unknown).
            c.outcome = Outcome::tls_policy;
            c.status = "4.7.5";
            c.try_next_host = true;
            c.reason = e.host + ": TLSA lookup failed (" + e.route_detail + "), DANE status unknown";
            return c;
    }
    if (e.route_error) {
        c.reason = e.route_detail.empty() ? e.route_error.message() : e.route_detail;
        if (e.route_error == RouteErrc::null_mx) {
            c.outcome = Outcome::permanent;
            c.status = "5.1.10";
        } else if (e.route_error == RouteErrc::no_such_domain || e.route_error == dns::DnsErrc::nxdomain) {
            c.outcome = Outcome::permanent;
            c.status = "5.1.2";
        } else if (e.route_error == RouteErrc::no_addresses) {
            c.outcome = Outcome::permanent;
            c.status = "5.4.4";
        } else {
            c.outcome = Outcome::temporary;
            c.status = "4.4.3";
        }
        return c;
    }
    if (e.session) {
        const SessionError& s = *e.session;
        if (s.refusal != Refusal::none) return refused_here(s, e.host);
        const bool forced = e.required >= tls::Level::encrypt;
        if (tls_stage(s.stage)) {
            c.try_next_host = true;
            c.reason = e.host + ": " + (s.detail.empty() ? std::string(to_string(s.stage)) : s.detail);
            if (s.reply) {
                c.diagnostic = "smtp; " + s.reply->summary();
                if (s.detail.empty()) c.reason = e.host + " answered STARTTLS with " + s.reply->summary();
            }
            if (forced) {
                c.outcome = Outcome::tls_policy;
                c.status = "4.7.5";  // RFC 3463: cryptographic failure
                c.reason = "TLS " + std::string(tls::to_string(e.required)) + " required, not met: " + c.reason;
            } else {
                c.outcome = Outcome::temporary;
                c.status = "4.7.0";
            }
            return c;
        }
        if (s.stage == Stage::auth) {
            // A next hop refusing our credentials (or offering no mechanism we use) says nothing
            // about the message: deferred whatever the reply (a 535 too), the next address may be
            // tried, and the reason says what to fix.
            c.outcome = Outcome::temporary;
            c.status = "4.7.0";
            c.try_next_host = true;
            c.reason = e.host + ": " + (s.detail.empty() ? std::string("AUTH failed") : s.detail);
            if (s.reply) {
                c.diagnostic = "smtp; " + s.reply->summary();
                c.reason += ": " + s.reply->summary();
            } else if (s.ec) {
                c.reason += ": " + s.ec.message();
            }
            return c;
        }
        if (s.reply) {
            std::string_view what = s.stage == Stage::greeting ? "in its greeting"
                                    : s.stage == Stage::ehlo   ? "to EHLO"
                                    : s.stage == Stage::mail   ? "to MAIL FROM"
                                    : s.stage == Stage::data   ? "to DATA"
                                                               : "after the message data";
            c = from_reply(*s.reply, e.host, what);
            if (!s.detail.empty()) c.reason += " (" + s.detail + ")";
            // A host that refuses the session, or 4xx before any transaction: the next MX may help.
            if (s.stage == Stage::greeting || s.stage == Stage::ehlo) {
                c.try_next_host = true;
                if (c.outcome == Outcome::permanent) c.outcome = Outcome::temporary;
            } else if (s.stage == Stage::mail && c.outcome == Outcome::temporary) {
                c.try_next_host = true;
            }
            return c;
        }
        // No reply: a local or network failure (connect refused, reset, timeout).
        c.outcome = Outcome::temporary;
        c.status = s.stage == Stage::connect ? "4.4.1" : "4.4.2";
        c.try_next_host = s.stage == Stage::connect || s.stage == Stage::greeting || s.stage == Stage::ehlo;
        c.reason = e.host + ": " + std::string(to_string(s.stage)) +
                   " failed: " + (s.detail.empty() ? s.ec.message() : s.detail);
        return c;
    }
    if (e.recipient) {
        return from_reply(e.recipient->reply, e.host, e.recipient->accepted ? "on accepting" : "on refusing");
    }
    c.outcome = Outcome::temporary;
    c.status = "4.0.0";
    c.reason = "no evidence (internal error)";
    return c;
}

Classified classify_store_unreadable(const std::string& error) {
    Classified c;
    c.outcome = Outcome::temporary;
    c.status = "4.3.0";  // RFC 3463: other or undefined mail system status
    c.reason = "local error: the policy store cannot be read (" + error + ")";
    return c;
}

std::optional<Classified> classify_decision(const policy::Decision& d) {
    Classified c;
    switch (d.action) {
        case policy::Action::escrow:
            c.outcome = Outcome::tls_policy;
            c.status = "4.7.0";
            c.reason = "awaiting escrow: " + d.summary;
            return c;
        case policy::Action::bounce:
            c.outcome = Outcome::permanent;
            c.status = d.status.empty() ? "5.7.0" : d.status;
            c.reason = d.summary;
            return c;
        case policy::Action::defer:
            c.outcome = Outcome::temporary;
            c.status = "4.7.0";
            c.reason = d.summary;
            return c;
        case policy::Action::deliver: break;
    }
    return std::nullopt;
}

Classified classify_no_allowed_host(const std::string& domain, const policy::Decision& d) {
    Classified c;
    c.outcome = Outcome::tls_policy;
    c.status = "4.7.5";
    c.reason =
        "no MX host of " + domain + " may be used at " + std::string(tls::to_string(d.level)) + " (" + d.summary + ")";
    return c;
}

Classified classify_unreachable(const std::string& domain) {
    Classified c;
    c.outcome = Outcome::temporary;
    c.status = "4.4.1";
    c.reason = "no mail server of " + domain + " could be reached";
    return c;
}

void classify_after_tls_failure(Classified& c, const policy::Decision& after, bool incident_recorded) {
    switch (after.action) {
        case policy::Action::escrow:
            c.reason = "awaiting escrow: " + after.summary + "; last TLS failure: " + c.reason;
            break;
        case policy::Action::bounce:
            c.outcome = Outcome::permanent;
            c.status = after.status.empty() ? "5.7.5" : after.status;
            c.reason = after.summary + "; last TLS failure: " + c.reason;
            break;
        case policy::Action::defer:
        case policy::Action::deliver:
            c.reason += " (" + after.summary + (incident_recorded ? "; incident recorded" : "") + ")";
            break;
    }
}

std::string expired_status(const Classified& last) {
    std::string status = last.status.empty() ? "4.4.7" : last.status;  // RFC 3463: delivery time expired
    status[0] = '5';
    return status;
}

store::IncidentKind incident_kind(const SessionError& e) {
    switch (e.tls_fault) {
        case TlsFault::certificate_changed: return store::IncidentKind::certificate_changed;
        case TlsFault::starttls_missing: return store::IncidentKind::starttls_missing;
        case TlsFault::starttls_refused: return store::IncidentKind::starttls_454;
        case TlsFault::no_session: return store::IncidentKind::handshake_failed;
        case TlsFault::below_level:
        case TlsFault::none: break;
    }
    return store::IncidentKind::level_not_met;
}

}  // namespace mailward::delivery
