# The compiled fast path (shared/formats/_fastcsv.c).

def convert(data: bytes, offset: int,
            spec: tuple[int, int, int, int, int, tuple[tuple[int, bytes], ...]],
            body: bytearray, max_records: int, events: int, max_events: int,
            max_body_bytes: int, /) -> tuple[int, int, int, int]: ...
