// Every German text of the notice, the code mail and the portal (brand.hpp says how they are
// filled); formal address ("Sie"), the same placeholders as texts_en.cpp.
#include "escrow/brand.hpp"

namespace mailward::escrow::detail {

extern const Texts kGerman;
const Texts kGerman{
    .never_password_mail =
        "Diese Nachricht fragt nie nach Ihrem Passwort. {org} wird Sie nie danach fragen, weder per E-Mail noch im "
        "Portal.",
    .never_password_portal =
        "{org} fragt nie nach Ihrem Passwort, weder per E-Mail noch in diesem Portal: Sie melden sich mit einem "
        "Einmalcode an, der Ihnen zugeschickt wird.",
    .support = "Fragen? Wenden Sie sich an {org}:",
    .sent_by = "Versandt vom sicheren E-Mail-Dienst von {org}.",

    .notice_subject = "Eine sichere Nachricht wartet auf Sie",
    .notice_intro = "{sender} hat Ihnen eine sichere Nachricht geschickt.",
    .notice_open_here = "Hier öffnen:",
    .notice_button = "Sichere Nachricht öffnen",
    .notice_kept =
        "Die Nachricht wird bis {until} verschlüsselt aufbewahrt. Wenn Sie den Link öffnen, fordern Sie einen "
        "Einmalcode an; er wird an diese Adresse ({to}) geschickt.",
    .notice_why =
        "Die Nachricht konnte Ihrem Mailserver nicht über eine verschlüsselte Verbindung zugestellt werden und "
        "wurde darum nicht im Klartext versandt. Wenn Sie sie nicht erwartet haben, können Sie diese E-Mail "
        "ignorieren.",

    .code_subject = "Ihr Einmalcode",
    .code_line = "Ihr Einmalcode lautet: {code}",
    .code_valid =
        "Er gilt {minutes} Minuten und nur einmal. Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese "
        "E-Mail.",

    .portal_name = "Portal für sichere Nachrichten",
    .footer =
        "Diese Seite speichert keine Kopie der Nachricht auf Ihrem Gerät. Melden Sie sich ab, wenn Sie fertig "
        "sind.",
    .landing_title = "Sichere Nachricht",
    .landing_h1 = "Sie haben eine sichere Nachricht",
    .landing_text = "{sender} hat Ihnen eine Nachricht geschickt, die hier bis {until} verschlüsselt aufbewahrt wird.",
    .landing_code_text =
        "Um sie zu lesen, fordern Sie einen Einmalcode an. Er wird an die Adresse geschickt, an die diese "
        "Nachricht ging.",
    .landing_locked =
        "Es wurden zu viele falsche Codes eingegeben. Ein Code, den Sie jetzt anfordern, ist länger; er gilt "
        "sofort.",
    .send_code = "Code anfordern",
    .have_code = "Sie haben schon einen Code?",
    .code_title = "Code eingeben",
    .code_h1 = "Geben Sie Ihren Einmalcode ein",
    .code_label = "Einmalcode",
    .open_button = "Nachricht öffnen",
    .code_help =
        "Codes gelten 15 Minuten und nur einmal. Kein Code angekommen? Sehen Sie im Spam-Ordner nach oder "
        "fordern Sie einen neuen an (höchstens 3 in 10 Minuten).",
    .send_new_code = "Neuen Code anfordern",
    .code_on_way =
        "Wenn dieser Link gültig ist, ist ein Einmalcode unterwegs an die Adresse, an die die Nachricht ging.",
    .code_not_accepted = "Dieser Code wurde nicht angenommen.",
    .code_not_accepted_hint = "Dieser Code wurde nicht angenommen. Prüfen Sie ihn oder fordern Sie einen neuen an.",
    .code_exhausted = "Dieser Code ist nach zu vielen Fehlversuchen gesperrt. Fordern Sie einen neuen Code an.",
    .code_locked =
        "Für diese Nachricht wurden zu viele falsche Codes eingegeben; kurze Codes gelten darum vorerst nicht. "
        "Fordern Sie einen neuen Code an: Er ist länger, geht an die Adresse, an die diese Nachricht ging, und gilt "
        "sofort.",
    .no_subject = "(kein Betreff)",
    .from = "Von",
    .to = "An",
    .cc = "Kopie",
    .date = "Datum",
    .available_until = "Verfügbar bis",
    .images_blocked = "{count} externe(s) Bild(er) wurde(n) zum Schutz Ihrer Privatsphäre nicht geladen.",
    .too_complex =
        "Die formatierte Fassung dieser Nachricht ist zu komplex, um sie sicher anzuzeigen; stattdessen wird ihr "
        "reiner Text gezeigt.",
    .message_label = "Nachricht",
    .message_body_title = "Text der Nachricht",
    .attachments = "Anhänge",
    .bytes = "({count} Bytes)",
    .reply_heading = "Sicher antworten",
    .reply_label = "Ihre Antwort",
    .attach_label = "Dateien anhängen (insgesamt bis 10 MB)",
    .send_reply = "Antwort senden",
    .sign_out = "Abmelden",
    .reply_sent = "Ihre Antwort wurde gesendet.",

    .home = {"Portal für sichere Nachrichten",
             "Öffnen Sie den Link in der E-Mail, die Sie erhalten haben, um Ihre sichere Nachricht zu lesen."},
    .not_found = {"Nicht gefunden", "Hier gibt es nichts."},
    .link_not_valid = {"Link ungültig", "Dieser Link ist ungültig. Prüfen Sie, ob er vollständig kopiert wurde."},
    .not_allowed = {"Nicht erlaubt", "Diese Anfrage ist hier nicht erlaubt."},
    .gone = {"Nachricht nicht mehr verfügbar",
             "Diese Nachricht ist abgelaufen oder wurde vom Absender zurückgezogen. Bitten Sie den Absender, sie "
             "erneut zu senden."},
    .bad_request = {"Fehlerhafte Anfrage", "Das Formular konnte nicht gelesen werden."},
    .refused_origin = {"Anfrage abgelehnt", "Dieses Formular muss von den Seiten des Portals gesendet werden."},
    .form_expired_link = {"Anfrage abgelehnt",
                          "Dieses Formular ist abgelaufen. Öffnen Sie den Link in Ihrer E-Mail erneut."},
    .form_expired_session = {"Anfrage abgelehnt",
                             "Dieses Formular ist abgelaufen. Laden Sie die Seite neu und versuchen Sie es erneut."},
    .signed_out = {"Abgemeldet",
                   "Ihre Sitzung ist beendet. Öffnen Sie den Link in Ihrer E-Mail, um sich erneut anzumelden."},
    .signed_out_done = {"Abgemeldet", "Sie sind abgemeldet. Sie können diese Seite schließen."},
    .trouble = {"Vorübergehendes Problem",
                "Das Portal konnte diese Anfrage nicht abschließen. Bitte versuchen Sie es in einer Minute erneut."},
    .unavailable = {"Vorübergehend nicht verfügbar",
                    "Das Portal kann gerade nichts speichern. Bitte versuchen Sie es in einigen Minuten erneut."},
    .unreadable = {"Nachricht nicht lesbar", "Die Nachricht konnte nicht angezeigt werden."},
    .no_attachment = {"Nicht gefunden", "Diesen Anhang gibt es nicht."},
    .empty_reply = {"Leere Antwort", "Schreiben Sie eine Antwort oder hängen Sie eine Datei an."},
    .no_reply_possible = {"Keine Antwort möglich", "Diese Nachricht hat keine Adresse für eine Antwort."},
    .request_too_large = {"Anfrage zu groß", "Dieses Formular darf nicht so groß sein."},
    .reply_too_large = {"Antwort zu groß", "Die Antwort und ihre Dateien dürfen höchstens {size} groß sein."},
    .reply_total = {"Antwort nicht gesendet",
                    "Die Antworten auf diese Nachricht haben ihre Gesamtgröße erreicht. Bitte erreichen Sie den "
                    "Absender auf anderem Weg."},
    .reply_rate = {"Antwort nicht gesendet",
                   "Sie haben vorerst so viele Antworten auf diese Nachricht gesendet wie erlaubt. Sie können in "
                   "{minutes} Minuten wieder antworten."},
    .reply_rate_one_minute =
        "Sie haben vorerst so viele Antworten auf diese Nachricht gesendet wie erlaubt. Sie können in 1 Minute "
        "wieder antworten.",
};

}  // namespace mailward::escrow::detail
