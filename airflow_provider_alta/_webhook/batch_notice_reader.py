"""A batch's reader of its webhook deliveries, through the API server (``POST /alta/batch-notices/b1``).

The batch builds one :class:`BatchNoticeReader` per try and calls :meth:`~BatchNoticeReader.read` whenever it
wants news: each read pages through every notice after its cursor, and tells the receiver to forget the ones
the batch has :meth:`~BatchNoticeReader.acknowledge` d (kept in its own journal), so what a killed try read
but never kept is read again by the next one. Every request is signed with the connection's
``webhook_secret`` over its exact bytes (see :mod:`.batch_contract`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_alta._webhook.batch_contract import (
    BATCH_NOTICES_ROUTE,
    BatchNotice,
    NoticesPage,
    notices_request_body,
    parse_notices_answer,
)
from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER, URL_PREFIX
from airflow_provider_alta._webhook.mailbox_protocol import sign_body
from airflow_provider_alta._webhook.mailbox_reader import api_server_base_url

if TYPE_CHECKING:
    import aiohttp

#: How many pages one read follows at most (500 notices each): a receiver that always says ``more`` ends here.
MAX_PAGES_PER_READ = 1000


class BatchNoticesUnreadable(RuntimeError):
    """The receiver refused a read or answered something else than notices.

    Names the URL, the HTTP status and the receiver's ``result`` word; never a body or a secret.
    """

    def __init__(self, url: str, result: str, status: int | None = None) -> None:
        answered = f"answered {status} {result}" if status is not None else result
        super().__init__(f"could not read the batch's webhook notices at {url}: {answered}")
        self.url = url
        self.result = result
        self.status = status


def batch_notices_url() -> str:
    """Where a batch reads its notices: the API server's base URL, the receiver's mount and route."""
    return api_server_base_url() + URL_PREFIX + BATCH_NOTICES_ROUTE


class BatchNoticeReader:
    """Reads one batch's notices in id order, from a cursor, forgetting on the receiver what was acknowledged."""

    def __init__(self, url: str, conn_id: str, batch_id: str, secret: str) -> None:
        self.url = url
        self.conn_id = conn_id
        self.batch_id = batch_id
        self._secret = secret
        #: The id of the last notice read (the next read asks for later ones).
        self.cursor = 0
        #: The id through which the receiver may forget (sent with the next request).
        self.acknowledged = 0
        #: Requests sent so far.
        self.requests_sent = 0

    def __repr__(self) -> str:  # never the secret
        return f"BatchNoticeReader({self.url!r}, {self.conn_id!r}, {self.batch_id!r}, cursor={self.cursor})"

    def acknowledge(self, through_id: int) -> None:
        """The batch has kept every notice up to ``through_id``: the next request lets the receiver forget them.

        Never beyond what was read (an acknowledgement past the cursor would forget unread notices), never back.
        """
        self.acknowledged = max(self.acknowledged, min(through_id, self.cursor))

    async def read(self, session: aiohttp.ClientSession) -> list[BatchNotice]:
        """Every notice after the cursor, in id order (paging until the receiver says there are no more)."""
        notices: list[BatchNotice] = []
        for _ in range(MAX_PAGES_PER_READ):
            page = _page_of(self.url, await self._request(session))
            notices.extend(page.notices)
            if page.notices:
                self.cursor = page.notices[-1].id
            if not page.more or not page.notices:
                break
        return notices

    async def _request(self, session: aiohttp.ClientSession) -> Any:
        import aiohttp

        body = notices_request_body(self.conn_id, self.batch_id, self.cursor, self.acknowledged)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign_body(self._secret, body)}
        self.requests_sent += 1
        try:
            async with session.post(self.url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise BatchNoticesUnreadable(self.url, await _result_of(response), response.status)
                try:
                    return await response.json(content_type=None)
                except ValueError:
                    raise BatchNoticesUnreadable(self.url, "(no JSON answer)", response.status) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BatchNoticesUnreadable(self.url, f"unreachable ({type(exc).__name__})") from None


def _page_of(url: str, answer: Any) -> NoticesPage:
    """The page of ``answer``; :class:`BatchNoticesUnreadable` when it is none."""
    try:
        return parse_notices_answer(answer)
    except ValueError as bad:
        raise BatchNoticesUnreadable(url, f"(malformed answer: {bad})") from None


async def _result_of(response: aiohttp.ClientResponse) -> str:
    """The receiver's ``result`` word of a refused read (never the body as a whole)."""
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return "(no JSON answer)"
    result = body.get("result") if isinstance(body, dict) else None
    return str(result)[:40] if result else "(no result)"
