// The short notice that tells a sender one of their messages went to escrow instead of the
// recipient's mail server: why (the TLS reason the delivery engine recorded), for which recipient,
// until when the recipient can read it, and the ids to quote to an administrator. It carries the
// original's Subject and Message-ID (headers) and nothing of its body. Composed with src/message;
// the escrow service queues it from the null sender (no bounce loops) when the sender's mode is
// listed in [escrow] notify_sender.
#pragma once

#include <chrono>
#include <string>

#include "common/result.hpp"

namespace mailward::escrow {

struct SenderNoticeInput {
    std::string to;          // the envelope sender
    std::string recipient;   // the escrowed recipient
    std::string subject;     // the original Subject (decoded), "" if none
    std::string message_id;  // the original Message-ID without <>, "" if none
    std::string reason;      // why it was escrowed (the recipient's last delivery reason)
    std::string queue_id;
    std::string escrow_id;
    std::chrono::system_clock::time_point expires{};
    std::string hostname;  // From: Mail Delivery System <MAILER-DAEMON@hostname>
};
Result<std::string> compose_sender_notice(const SenderNoticeInput& in);

}  // namespace mailward::escrow
