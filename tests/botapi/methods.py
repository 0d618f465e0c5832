"""The Bot API methods about chats: messages, edits, callbacks, files, commands, getMe.

Each ``m_<methodName>`` takes the decoded parameters and uploaded files, returns the
``result`` Telegram would return, or raises ApiError with Telegram's code and description.
State lives on the FakeBotAPI (``self.fake``) so tests can read it there.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tests.botapi.formatting import EntityParseError, parse_html, trim, utf16_len
from tests.botapi.records import ApiError, BotMessage, MessageEvent, MessageVersion, UploadedFile

if TYPE_CHECKING:
    from tests.botapi.fake import FakeBotAPI
    from tests.botapi.users import FakeUser

Params = dict[str, Any]
Files = dict[str, UploadedFile]
MethodImpl = Callable[[Params, Files], Awaitable[Any]]

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note",
    "upload_video_note",
}  # fmt: skip
_NOOP_METHODS = (
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setChatMenuButton",
    "setMyDefaultAdministratorRights",
)


def inline_markup(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a reply_markup that stays on a message (only inline keyboards do)."""
    if markup and markup.get("inline_keyboard"):
        return {"inline_keyboard": markup["inline_keyboard"]}
    return None


class ChatMethods:
    """Implementations of every supported method except the update-related ones, which live
    on FakeBotAPI next to the update queue they manage."""

    def __init__(self, fake: FakeBotAPI) -> None:
        self.fake = fake

    def table(self) -> dict[str, MethodImpl]:
        """Telegram method name -> implementation."""
        table: dict[str, MethodImpl] = {
            name.removeprefix("m_"): getattr(self, name)
            for name in dir(self)
            if name.startswith("m_")
        }
        table.update(dict.fromkeys(_NOOP_METHODS, self.noop))
        return table

    def message_json(self, msg: BotMessage) -> dict[str, Any]:
        """The Message object Telegram would return for ``msg`` in its current state."""
        out: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": self.fake.bot_user(),
            "chat": self.fake.users[msg.chat_id].as_chat(),
            "date": msg.date,
        }
        if msg.edit_date is not None:
            out["edit_date"] = msg.edit_date
        if msg.text is not None:
            out["text"] = msg.text
            if msg.entities:
                out["entities"] = msg.entities
        if msg.photo_file is not None:
            width, height = _image_size(msg.photo_file.data)
            out["photo"] = [
                {
                    "file_id": msg.photo_file.file_id,
                    "file_unique_id": msg.photo_file.file_unique_id,
                    "width": width,
                    "height": height,
                    "file_size": len(msg.photo_file.data or b""),
                }
            ]
        if msg.document_file is not None:
            doc = msg.document_file
            out["document"] = {
                "file_id": doc.file_id,
                "file_unique_id": doc.file_unique_id,
                "file_name": doc.filename or "document",
                "mime_type": doc.mime_type or "application/octet-stream",
                "file_size": len(doc.data or b""),
            }
        if msg.caption is not None:
            out["caption"] = msg.caption
            if msg.caption_entities:
                out["caption_entities"] = msg.caption_entities
        if markup := inline_markup(msg.reply_markup):
            out["reply_markup"] = markup
        return out

    def new_file(
        self, data: bytes | None, filename: str | None, mime: str | None, url: str | None = None
    ) -> UploadedFile:
        n = next(self.fake.ids)
        return UploadedFile(f"BQACAgIAAx{n:08d}fake", f"AgAD{n:06d}", data, filename, mime, url)

    def _resolve_file(self, params: Params, files: Files, field: str) -> UploadedFile:
        value = params.get(field)
        file = files.get(field)
        if isinstance(value, str) and value.startswith("attach://"):
            file = files.get(value.removeprefix("attach://"))
        elif isinstance(value, str) and file is None:
            if value in self.fake.files:
                file = self.fake.files[value]
            elif value.startswith(("http://", "https://")):
                file = self.new_file(None, value.rsplit("/", 1)[-1], None, url=value)
            else:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if file is None:
            raise ApiError(400, f"Bad Request: there is no {field} in the request")
        self.fake.files[file.file_id] = file
        return file

    def _chat(self, params: Params, *, sending: bool) -> FakeUser:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        user = self.fake.users.get(chat_id) if isinstance(chat_id, int) else None
        if user is None or not user.started:
            raise ApiError(400, "Bad Request: chat not found")
        if sending and user.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return user

    def _formatted(
        self, params: Params, field: str, limit: int
    ) -> tuple[str | None, list[dict[str, Any]]]:
        """Visible text and entities of ``field`` (text or caption) as Telegram stores them."""
        raw = params.get(field)
        if raw is None or raw == "":
            if field == "text":
                raise ApiError(400, "Bad Request: message text is empty")
            return None, []
        entities_field = "entities" if field == "text" else "caption_entities"
        text, entities = str(raw), list(params.get(entities_field) or [])
        if str(params.get("parse_mode") or "").lower() == "html":
            try:
                text, entities = parse_html(text)
            except EntityParseError as exc:
                raise ApiError(400, str(exc)) from None
        text, entities = trim(text, entities)
        if not text and field == "text":
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > limit:
            what = "message" if field == "text" else "message caption"
            raise ApiError(400, f"Bad Request: {what} is too long")
        return (text or None), entities

    @staticmethod
    def _checked_markup(params: Params) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard", [])
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for button in itertools.chain.from_iterable(rows):
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise ApiError(
                    400,
                    'Bad Request: can\'t parse inline keyboard button: Field "text" must be '
                    "of type String",
                )
            if "callback_data" in button:
                if not 1 <= len(str(button["callback_data"]).encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            elif len(button) == 1:
                raise ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: Text buttons are "
                    "unallowed in the inline keyboard",
                )
        return markup

    def _store(self, msg: BotMessage) -> dict[str, Any]:
        self.fake.bot_messages[(msg.chat_id, msg.message_id)] = msg
        self.fake.message_events.append(MessageEvent("sent", msg, msg.content))
        return self.message_json(msg)

    def _new_message(self, user: FakeUser, params: Params, **fields: Any) -> BotMessage:
        return BotMessage(
            chat_id=user.id,
            message_id=self.fake.next_message_id(user.id),
            date=int(time.time()),
            parse_mode=params.get("parse_mode"),
            source_text=params.get("text", params.get("caption")),
            reply_markup=self._checked_markup(params),
            **fields,
        )

    def _message_to_edit(self, params: Params) -> BotMessage:
        if "inline_message_id" in params:
            raise ApiError(400, "Bad Request: inline messages are not supported by the fake")
        user = self._chat(params, sending=False)
        if "message_id" not in params:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        msg = self.fake.bot_messages.get((user.id, params["message_id"]))
        if msg is None or msg.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        return msg

    def _edit(self, msg: BotMessage, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        msg.history.append(MessageVersion(msg.text, msg.caption, msg.reply_markup, now))
        for key, value in changes.items():
            setattr(msg, key, value)
        msg.edit_date = now
        self.fake.message_events.append(MessageEvent("edited", msg, msg.content))
        return self.message_json(msg)

    @staticmethod
    def _scope_key(scope: dict[str, Any] | None) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    async def noop(self, params: Params, files: Files) -> bool:
        return True

    async def m_getMe(self, params: Params, files: Files) -> dict[str, Any]:
        return {**self.fake.bot_user(), **self.fake.get_me_flags}

    async def m_sendMessage(self, params: Params, files: Files) -> dict[str, Any]:
        user = self._chat(params, sending=True)
        text, entities = self._formatted(params, "text", 4096)
        return self._store(self._new_message(user, params, text=text, entities=entities))

    async def m_sendPhoto(self, params: Params, files: Files) -> dict[str, Any]:
        user = self._chat(params, sending=True)
        photo = self._resolve_file(params, files, "photo")
        if photo.data is not None and _image_size(photo.data) == (0, 0):
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        caption, entities = self._formatted(params, "caption", 1024)
        return self._store(
            self._new_message(
                user,
                params,
                photo=photo.data,
                photo_file=photo,
                caption=caption,
                caption_entities=entities,
            )
        )

    async def m_sendDocument(self, params: Params, files: Files) -> dict[str, Any]:
        user = self._chat(params, sending=True)
        document = self._resolve_file(params, files, "document")
        if document.data == b"":
            raise ApiError(400, "Bad Request: file must be non-empty")
        caption, entities = self._formatted(params, "caption", 1024)
        return self._store(
            self._new_message(
                user,
                params,
                document=document.data,
                document_file=document,
                caption=caption,
                caption_entities=entities,
            )
        )

    async def m_editMessageText(self, params: Params, files: Files) -> dict[str, Any]:
        msg = self._message_to_edit(params)
        if msg.text is None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = self._formatted(params, "text", 4096)
        markup = inline_markup(self._checked_markup(params))
        if (text, entities, markup) == (msg.text, msg.entities, inline_markup(msg.reply_markup)):
            raise ApiError(400, NOT_MODIFIED)
        return self._edit(
            msg,
            text=text,
            entities=entities,
            reply_markup=markup,
            parse_mode=params.get("parse_mode"),
            source_text=params.get("text"),
        )

    async def m_editMessageCaption(self, params: Params, files: Files) -> dict[str, Any]:
        msg = self._message_to_edit(params)
        if msg.text is not None:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption, entities = self._formatted(params, "caption", 1024)
        markup = inline_markup(self._checked_markup(params))
        current = (msg.caption, msg.caption_entities, inline_markup(msg.reply_markup))
        if (caption, entities, markup) == current:
            raise ApiError(400, NOT_MODIFIED)
        return self._edit(msg, caption=caption, caption_entities=entities, reply_markup=markup)

    async def m_editMessageReplyMarkup(self, params: Params, files: Files) -> dict[str, Any]:
        msg = self._message_to_edit(params)
        markup = inline_markup(self._checked_markup(params))
        if markup == inline_markup(msg.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        return self._edit(msg, reply_markup=markup)

    async def m_deleteMessage(self, params: Params, files: Files) -> bool:
        user = self._chat(params, sending=False)
        message_id = params.get("message_id")
        msg = (
            self.fake.bot_messages.get((user.id, message_id))
            if isinstance(message_id, int)
            else None
        )
        if msg is not None and not msg.deleted:
            msg.deleted = True
            self.fake.message_events.append(MessageEvent("deleted", msg, msg.content))
            return True
        own = [m for m in user.sent if m["message_id"] == message_id]
        if not own:
            raise ApiError(400, "Bad Request: message to delete not found")
        user.sent.remove(own[0])
        return True

    async def m_answerCallbackQuery(self, params: Params, files: Files) -> bool:
        press = self.fake.presses.get(str(params.get("callback_query_id")))
        if press is None or press.answered:
            raise ApiError(400, QUERY_TOO_OLD)
        press.answer = dict(params)
        return True

    async def m_sendChatAction(self, params: Params, files: Files) -> bool:
        self._chat(params, sending=True)
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def m_setMyCommands(self, params: Params, files: Files) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, 'Bad Request: parameter "commands" is required')
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self.fake.commands[key] = commands
        return True

    async def m_getMyCommands(self, params: Params, files: Files) -> list[dict[str, Any]]:
        return list(
            self.fake.commands_for(params.get("scope"), str(params.get("language_code") or ""))
        )

    async def m_deleteMyCommands(self, params: Params, files: Files) -> bool:
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self.fake.commands.pop(key, None)
        return True

    async def m_getFile(self, params: Params, files: Files) -> dict[str, Any]:
        file = self.fake.files.get(str(params.get("file_id")))
        if file is None or file.data is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if not file.file_path:
            folder = "documents" if file.filename else "photos"
            file.file_path = f"{folder}/file_{file.file_unique_id}_{file.filename or 'photo.jpg'}"
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": len(file.data),
            "file_path": file.file_path,
        }

    async def m_close(self, params: Params, files: Files) -> bool:
        return True

    async def m_logOut(self, params: Params, files: Files) -> bool:
        return True


def _image_size(data: bytes | None) -> tuple[int, int]:
    """(width, height) of an image; (0, 0) if it is not one. URLs (None) get a placeholder."""
    if data is None:
        return 320, 320
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return 320, 320
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return 0, 0
