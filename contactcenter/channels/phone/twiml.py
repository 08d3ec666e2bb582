"""TwiML documents the line answers with, built with Twilio's library (never by hand).

Each builder takes the caller's language (``ivr.say`` picks the phrase and
``<Say language>``) and the absolute URLs of our own webhooks, so that what
Twilio requests next is signed over the URL we configured.
"""

from __future__ import annotations

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from contactcenter.channels.phone.ivr import MenuOption, say, voice_language

ANY_KEY = "0123456789*#"


def _say(response: VoiceResponse | object, language: str | None, text: str) -> None:
    response.say(text, language=voice_language(language))  # type: ignore[attr-defined]


def greeting(language: str | None, name: str, fast_track: bool, menu: tuple[MenuOption, ...],
             menu_url: str) -> str:
    """Greet the caller (by name when known), tell a valued one they are fast-tracked, offer the menu.

    Without a menu the call goes straight on to ``menu_url`` (which queues it).
    """
    response = VoiceResponse()
    hello = say(language, "hello_name", name=name) if name else say(language, "hello")
    lines = [hello]
    if fast_track:
        lines.append(say(language, "fast_track"))
    if menu:
        gather = response.gather(input="dtmf speech", num_digits=1, action=menu_url,
                                 method="POST", timeout=6, speech_timeout="auto",
                                 language=voice_language(language),
                                 hints=", ".join(w for o in menu for w in (o.label, *o.words)))
        _say(gather, language, " ".join(lines))
        _say(gather, language, " ".join(say(language, "option", label=o.label, digit=o.digit)
                                        for o in menu) + " " + say(language, "menu_end"))
    else:
        _say(response, language, " ".join(lines))
    response.redirect(menu_url, method="POST")
    return str(response)


def enqueue(language: str | None, queue_name: str, wait_url: str, action_url: str) -> str:
    """Put the caller in a Twilio queue; ``wait_url`` plays while they wait."""
    response = VoiceResponse()
    _say(response, language, say(language, "queued"))
    response.enqueue(queue_name[:64], wait_url=wait_url, wait_url_method="POST",
                     action=action_url, method="POST")
    return str(response)


def waiting(language: str | None, announcement: str, leave_url: str, music_url: str,
            pause_seconds: int) -> str:
    """Tell the caller their place and wait, then hold music; star leaves for voicemail.

    Twilio requests the wait URL again when the document ends, so the
    announcement repeats once per play of the music (or pause).
    """
    response = VoiceResponse()
    gather = response.gather(input="dtmf", num_digits=1, action=leave_url, method="POST",
                             timeout=1)
    if announcement:
        _say(gather, language, announcement)
    _say(gather, language, say(language, "leave"))
    if music_url:
        gather.play(music_url)
    else:
        gather.pause(length=max(1, min(pause_seconds, 300)))
    return str(response)


def leave_queue() -> str:
    """Take the caller out of the queue (the queue's action URL decides what follows)."""
    response = VoiceResponse()
    response.leave()
    return str(response)


def voicemail(language: str | None, reason: str, record_url: str, recording_url: str,
              transcription_url: str, max_seconds: int) -> str:
    """Explain why (closed, nobody free) and record a message with transcription."""
    response = VoiceResponse()
    text = " ".join(x for x in (say(language, reason) if reason else "",
                                say(language, "voicemail")) if x)
    _say(response, language, text)
    response.record(action=record_url, method="POST", max_length=max(5, max_seconds),
                    finish_on_key=ANY_KEY, play_beep=True, transcribe=True,
                    transcribe_callback=transcription_url,
                    recording_status_callback=recording_url,
                    recording_status_callback_event="completed",
                    recording_status_callback_method="POST")
    _say(response, language, say(language, "goodbye"))
    return str(response)


def dial(target: str, *, client: bool, action_url: str, timeout: int, caller_id: str = "",
         record: bool = False, recording_url: str = "", status_url: str = "",
         language: str | None = None, announcement: str = "") -> str:
    """Connect this call to an agent's softphone (``client``) or a number."""
    response = VoiceResponse()
    if announcement:
        _say(response, language, announcement)
    options: dict[str, object] = {"action": action_url, "method": "POST",
                                  "timeout": max(5, min(timeout, 120))}
    if caller_id:
        options["caller_id"] = caller_id
    if record:
        options.update(record="record-from-answer-dual",
                       recording_status_callback=recording_url,
                       recording_status_callback_event="completed")
    d = response.dial(**options)
    noun_options = {"status_callback": status_url, "status_callback_method": "POST",
                    "status_callback_event": "initiated ringing answered completed"
                    } if status_url else {}
    if client:
        d.client(target, **noun_options)
    else:
        d.number(target, **noun_options)
    return str(response)


def spoken(language: str | None, key: str, hangup: bool = True) -> str:
    """Say one phrase (then hang up)."""
    response = VoiceResponse()
    _say(response, language, say(language, key))
    if hangup:
        response.hangup()
    return str(response)


def hangup() -> str:
    """End the call."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def empty() -> str:
    """An empty voice document (nothing more to do)."""
    return str(VoiceResponse())


def sms_reply(text: str = "") -> str:
    """Answer an inbound message (empty: send nothing)."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)
