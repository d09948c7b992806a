// DKIM at delivery (docs/design.md "DKIM"): the one call deliver() makes after loading a message's
// body, before its per-domain transfers. Signs with the serve parent's keys (dkim::Signer) when the
// From: domain has a [[dkim]] entry; a failure is logged and the message goes out unsigned.
#pragma once

#include <string>

#include "dkim/dkim.hpp"
#include "store/store.hpp"

namespace mailward::delivery {

// True for mail mailward writes itself: DSNs (null sender), escrow notices and code mails (queued
// by the escrow service from 127.0.0.1 with HELO "escrow"), TLS-RPT reports (queued from 127.0.0.1
// with HELO "tlsrpt"), secure replies (auth_user "portal:ID").
bool is_own_mail(const store::Envelope& env);

// Prepends a DKIM-Signature to body when signer has a key for its From: domain (see
// dkim::Signer::sign_outgoing); logs what it did under the queue id.
void dkim_sign_for_delivery(const dkim::Signer& signer, const store::Envelope& env, std::string& body);

}  // namespace mailward::delivery
