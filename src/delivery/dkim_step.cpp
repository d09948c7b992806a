// DKIM at delivery (delivery/dkim_step.hpp, RFC 6376): once per message attempt, in the serve parent,
// before the per-domain transfers. Never blocks or loses a message: a signing failure is a warning
// and the message is delivered unsigned.
#include "delivery/dkim_step.hpp"

#include <spdlog/spdlog.h>

#include "common/log_escape.hpp"

namespace mailward::delivery {

bool is_own_mail(const store::Envelope& env) {
    if (env.sender.empty()) return true;
    if ((env.client_helo == "escrow" || env.client_helo == "tlsrpt") && env.client_address == "127.0.0.1" &&
        env.auth_user.empty())
        return true;
    return env.auth_user.rfind("portal:", 0) == 0;
}

void dkim_sign_for_delivery(const dkim::Signer& signer, const store::Envelope& env, std::string& body) {
    if (signer.empty()) return;
    const bool own = is_own_mail(env);
    auto o = signer.sign_outgoing(body, own);
    using K = dkim::SignOutcome::Kind;
    switch (o.kind) {
        case K::signed_now:
            spdlog::info("delivery: {}: DKIM signed (d={}, {}, {})", env.id, o.domain, o.detail,
                         own ? "own mail" : "relayed");
            break;
        case K::failed:
            spdlog::warn("delivery: {}: DKIM signing for d={} failed ({}); delivering unsigned", env.id,
                         common::log_escape(o.domain), o.detail);
            break;
        case K::already_signed:
            spdlog::debug("delivery: {}: DKIM: signed by d={} already; not signed again", env.id, o.domain);
            break;
        case K::relayed_not_signed:
            spdlog::debug("delivery: {}: DKIM: relayed mail of d={} not signed (sign_relayed = false)", env.id,
                          o.domain);
            break;
        case K::no_key: break;
    }
}

}  // namespace mailward::delivery
