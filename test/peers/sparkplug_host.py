"""An independent Sparkplug B host for interop tests: decodes with Google's protobuf runtime from a module
protoc generated from sparkplug_b.proto, over paho-mqtt. Prints one JSON line per message received on
spBv1.0/#; reads commands on stdin: 'rebirth', 'state online|offline TS HOST', 'dcmd DEVICE DATATYPE VALUE NAME'
(a write of one metric, NAME may hold spaces), 'quit'."""
import json, sys, threading, importlib, time
import paho.mqtt.client as mqtt

gen_dir, host, port, group, node = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
sys.path.insert(0, gen_dir)
pb = importlib.import_module("sparkplug_b_pb2")
VALUE_FIELDS = ["int_value", "long_value", "float_value", "double_value", "boolean_value", "string_value"]

def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

def decode(topic, data):
    if "/STATE/" in topic:
        return {"topic": topic, "state": json.loads(data)}
    p = pb.Payload()
    p.ParseFromString(data)
    metrics = []
    for m in p.metrics:
        d = {"name": m.name if m.HasField("name") else None, "alias": m.alias if m.HasField("alias") else None,
             "datatype": m.datatype if m.HasField("datatype") else None, "ts": m.timestamp,
             "historical": m.is_historical, "null": m.is_null}
        kind = m.WhichOneof("value")
        d["value"] = getattr(m, kind) if kind else None
        if m.HasField("properties"):
            props = {}
            for k, v in zip(m.properties.keys, m.properties.values):
                vk = v.WhichOneof("value")
                props[k] = getattr(v, vk) if vk else None
            d["props"] = props
        metrics.append(d)
    return {"topic": topic, "seq": p.seq if p.HasField("seq") else None, "ts": p.timestamp, "metrics": metrics}

def on_connect(c, userdata, flags, rc, props=None):
    c.subscribe("spBv1.0/#", qos=1)

def on_subscribe(c, userdata, mid, granted, props=None):
    out({"ready": True})

def on_message(c, userdata, msg):
    try:
        out(decode(msg.topic, msg.payload))
    except Exception as e:
        out({"topic": msg.topic, "error": str(e)})

try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sp-host-%d" % time.time_ns(), protocol=mqtt.MQTTv311)
except AttributeError:
    client = mqtt.Client(client_id="sp-host-%d" % time.time_ns(), protocol=mqtt.MQTTv311)
client.reconnect_delay_set(min_delay=1, max_delay=2)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect(host, port, keepalive=30)
client.loop_start()

for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    if parts[0] == "rebirth":
        p = pb.Payload()
        p.timestamp = int(time.time() * 1000)
        m = p.metrics.add()
        m.name = "Node Control/Rebirth"
        m.datatype = 11
        m.boolean_value = True
        client.publish("spBv1.0/%s/NCMD/%s" % (group, node), p.SerializeToString(), qos=0)
    elif parts[0] == "state":
        client.publish("spBv1.0/STATE/%s" % parts[3], json.dumps({"online": parts[1] == "online", "timestamp": int(parts[2])}), qos=1, retain=True)
    elif parts[0] == "dcmd":
        device, datatype, raw, name = parts[1], int(parts[2]), parts[3], " ".join(parts[4:])
        p = pb.Payload()
        p.timestamp = int(time.time() * 1000)
        m = p.metrics.add()
        m.name = name
        m.timestamp = p.timestamp
        m.datatype = datatype
        if datatype in (9, 10):
            setattr(m, "float_value" if datatype == 9 else "double_value", float(raw))
        elif datatype == 11:
            m.boolean_value = raw == "true"
        elif datatype == 12:
            m.string_value = raw
        elif datatype in (4, 8):
            m.long_value = int(raw) & 0xFFFFFFFFFFFFFFFF
        else:
            m.int_value = int(raw) & 0xFFFFFFFF
        client.publish("spBv1.0/%s/DCMD/%s/%s" % (group, node, device), p.SerializeToString(), qos=0)
        out({"sent": "dcmd", "device": device, "name": name})
    elif parts[0] == "quit":
        break
client.loop_stop()
client.disconnect()
