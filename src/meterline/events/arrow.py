"""Event rows as Arrow record batches: the form ingest logs, hands on and inserts.

The store parses a columnar Arrow batch several times faster than the same rows as JSON
text (measured on chDB: ~1 µs against ~8–11 µs per event), and a batch is read back
without decoding a row, so the ingest workers build batches once and everything after
them — the write-ahead log, the live windows, the store insert — passes them along.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from meterline.events.schema import ROW_COLUMNS, EventRow

_S, _F64 = pa.string(), pa.float64()
_TYPES: dict[str, pa.DataType] = {
    "timestamp": pa.int64(),
    "received_at": pa.uint32(),
    "retention_days": pa.uint16(),
    "status": pa.uint16(),
    "latency_ms": _F64,
    "request_size": pa.uint64(),
    "response_size": pa.uint64(),
    "input_tokens": pa.uint64(),
    "output_tokens": pa.uint64(),
    "cost_usd": _F64,
    "success": pa.int8(),
    "rating": pa.uint8(),
}

EVENT_SCHEMA = pa.schema([(name, _TYPES.get(name, _S)) for name in ROW_COLUMNS])
"""Arrow schema of event rows: :data:`ROW_COLUMNS` in order, ``timestamp`` in epoch ms."""


def rows_to_batch(rows: Sequence[EventRow]) -> pa.RecordBatch:
    """A record batch of validated rows (values in :data:`ROW_COLUMNS` order)."""
    if not rows:
        return pa.RecordBatch.from_pylist([], schema=EVENT_SCHEMA)
    # Lists convert several times faster than the tuples zip(*rows) yields.
    arrays = [
        pa.array(list(values), type=kind)
        for values, kind in zip(zip(*rows, strict=True), EVENT_SCHEMA.types, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=EVENT_SCHEMA)


def batch_to_ipc(batch: pa.RecordBatch) -> bytes:
    """The batch as one Arrow IPC stream (schema plus batch), for the log and for pickling."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def ipc_to_batch(payload: bytes) -> pa.RecordBatch:
    """The rows of an IPC stream (as :func:`batch_to_ipc` writes) as one record batch."""
    reader = pa.ipc.open_stream(payload)
    batches = list(reader)
    if len(batches) == 1:
        return batches[0]
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=reader.schema)
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def rows_to_ipc(rows: Sequence[EventRow]) -> bytes:
    """Validated rows as one IPC stream: :func:`rows_to_batch` then :func:`batch_to_ipc`."""
    return batch_to_ipc(rows_to_batch(rows))


def is_ipc(payload: bytes) -> bool:
    """Whether a logged payload is an Arrow IPC stream (older logs hold JSON lines)."""
    return payload[:4] == b"\xff\xff\xff\xff"
