"""A batch's reader of its webhook deliveries, through the API server (``POST /alta/batch-notices/b1``).

The batch builds one :class:`BatchNoticeReader` per try and calls :meth:`~BatchNoticeReader.read` whenever it
wants news: each read pages through every notice the receiver holds for the batch and hands over the ones not
handed over before, and tells the receiver to forget the ones the batch has
:meth:`~BatchNoticeReader.acknowledge` d (kept in its own journal), so what a killed try read but never kept is
read again by the next one. Every request is signed with the connection's
``webhook_secret`` over its exact bytes (see :mod:`.batch_contract`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_alta._webhook.batch_contract import (
    BATCH_NOTICES_ROUTE,
    MAX_FORGET,
    BatchNotice,
    NoticesPage,
    notices_request_body,
    parse_notices_answer,
)
from airflow_provider_alta._webhook.contract import SIGNATURE_HEADER, URL_PREFIX
from airflow_provider_alta._webhook.mailbox_protocol import sign_body
from airflow_provider_alta._webhook.mailbox_reader import api_server_base_url
from airflow_provider_alta._webhook.read_failures import result_of

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
    """Reads one batch's notices, forgetting on the receiver, by id, the ones the batch acknowledged."""

    def __init__(self, url: str, conn_id: str, batch_id: str, secret: str) -> None:
        self.url = url
        self.conn_id = conn_id
        self.batch_id = batch_id
        self._secret = secret
        #: Notices handed to the batch and not acknowledged yet (a later read does not hand them again).
        self.unacknowledged: set[int] = set()
        #: Notices acknowledged, for the receiver to forget with the next requests.
        self.to_forget: list[int] = []
        #: Requests sent so far.
        self.requests_sent = 0

    def __repr__(self) -> str:  # never the secret
        return f"BatchNoticeReader({self.url!r}, {self.conn_id!r}, {self.batch_id!r})"

    def acknowledge(self) -> None:
        """The batch has kept every notice read so far: the next requests let the receiver forget them."""
        self.to_forget.extend(sorted(self.unacknowledged))
        self.unacknowledged.clear()

    async def read(self, session: aiohttp.ClientSession) -> list[BatchNotice]:
        """Every notice the receiver holds for the batch that was not handed over already, in id order (paging
        until the receiver says there are no more). Each read starts from the lowest id: on PostgreSQL a
        delivery may commit after one with a higher id, and is read all the same."""
        notices: list[BatchNotice] = []
        after = 0
        for _ in range(MAX_PAGES_PER_READ):
            page = _page_of(self.url, await self._request(session, after))
            for notice in page.notices:
                if notice.id not in self.unacknowledged and notice.id not in self.to_forget:
                    self.unacknowledged.add(notice.id)
                    notices.append(notice)
            if not page.more or not page.notices:
                break
            after = page.notices[-1].id
        return notices

    async def _request(self, session: aiohttp.ClientSession, after: int) -> Any:
        import aiohttp

        forget = self.to_forget[:MAX_FORGET]
        body = notices_request_body(self.conn_id, self.batch_id, after, forget)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign_body(self._secret, body)}
        self.requests_sent += 1
        try:
            async with session.post(self.url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise BatchNoticesUnreadable(self.url, await result_of(response), response.status)
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    raise BatchNoticesUnreadable(self.url, "(no JSON answer)", response.status) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BatchNoticesUnreadable(self.url, f"unreachable ({type(exc).__name__})") from None
        del self.to_forget[: len(forget)]  # the receiver forgot them before it answered
        return answer


def _page_of(url: str, answer: Any) -> NoticesPage:
    """The page of ``answer``; :class:`BatchNoticesUnreadable` when it is none."""
    try:
        return parse_notices_answer(answer)
    except ValueError as bad:
        raise BatchNoticesUnreadable(url, f"(malformed answer: {bad})") from None
