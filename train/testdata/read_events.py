#!/usr/bin/env python3
"""An independent reader of TensorBoard event files, for reel's tests: TFRecord framing with
masked CRC-32C checks (written here from tensorflow/core/lib/io/record_reader.cc), and the Event /
Summary messages decoded by Google's protobuf runtime (python3-protobuf) from descriptors built
from tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto.

Usage: read_events.py EVENT_FILE...  → one JSON line per event:
  {"step", "file_version", "session_status", "values": [{"tag", "simple_value" | "image": {"width", "height", "png_bytes"}}]}
"""
import json
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def messages():
    f = descriptor_pb2.FileDescriptorProto(name="tb.proto", package="tb", syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto

    def msg(name, fields):
        m = f.message_type.add(name=name)
        for fname, num, typ, label, tname in fields:
            fd = m.field.add(name=fname, number=num, type=typ, label=label)
            if tname:
                fd.type_name = tname
        return m

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg("Image", [("height", 1, F.TYPE_INT32, opt, None), ("width", 2, F.TYPE_INT32, opt, None),
                  ("colorspace", 3, F.TYPE_INT32, opt, None), ("encoded_image_string", 4, F.TYPE_BYTES, opt, None)])
    msg("Value", [("tag", 1, F.TYPE_STRING, opt, None), ("simple_value", 2, F.TYPE_FLOAT, opt, None),
                  ("image", 4, F.TYPE_MESSAGE, opt, ".tb.Image")])
    msg("Summary", [("value", 1, F.TYPE_MESSAGE, rep, ".tb.Value")])
    msg("SessionLog", [("status", 1, F.TYPE_INT32, opt, None)])
    msg("Event", [("wall_time", 1, F.TYPE_DOUBLE, opt, None), ("step", 2, F.TYPE_INT64, opt, None),
                  ("file_version", 3, F.TYPE_STRING, opt, None), ("summary", 5, F.TYPE_MESSAGE, opt, ".tb.Summary"),
                  ("session_log", 7, F.TYPE_MESSAGE, opt, ".tb.SessionLog")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    desc = pool.FindMessageTypeByName("tb.Event")
    try:
        return message_factory.GetMessageClass(desc)
    except AttributeError:  # older protobuf
        return message_factory.MessageFactory(pool).GetPrototype(desc)


def main():
    Event = messages()
    for path in sys.argv[1:]:
        with open(path, "rb") as fh:
            data = fh.read()
        i = 0
        while i < len(data):
            header = data[i:i + 8]
            (n,) = struct.unpack("<Q", header)
            (hcrc,) = struct.unpack("<I", data[i + 8:i + 12])
            if hcrc != masked(header):
                sys.exit(f"{path}: bad length CRC at offset {i}")
            body = data[i + 12:i + 12 + n]
            (bcrc,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
            if len(body) != n or bcrc != masked(body):
                sys.exit(f"{path}: bad data CRC at offset {i}")
            i += 16 + n
            ev = Event()
            ev.ParseFromString(body)
            out = {"step": ev.step, "file_version": ev.file_version,
                   "session_status": ev.session_log.status if ev.HasField("session_log") else None, "values": []}
            for v in ev.summary.value:
                if v.HasField("image"):
                    out["values"].append({"tag": v.tag, "image": {"width": v.image.width, "height": v.image.height,
                                                                  "png_bytes": len(v.image.encoded_image_string)}})
                else:
                    out["values"].append({"tag": v.tag, "simple_value": v.simple_value})
            print(json.dumps(out))


if __name__ == "__main__":
    main()
