#!/usr/bin/env python3
"""Writes fuzz/corpus/TARGET/ seeds from keel's examples and test inputs.

Run from the repository root (`python3 fuzz/seeds.py`); the output is
committed, so this only needs re-running when the seeds should change.
"""
import io, json, os, tarfile, hashlib, glob

import yaml  # python3-yaml (Debian)

OUT = "fuzz/corpus"


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# Manifests: the examples, as YAML streams and as one JSON object per doc.
for path in sorted(glob.glob("examples/*.yaml") + glob.glob("examples/corpus/*.yaml")):
    base = os.path.basename(path).rsplit(".", 1)[0]
    text = open(path).read()
    put("manifest_yaml", base + ".yaml", text)
    for i, doc in enumerate(d for d in yaml.safe_load_all(text) if d):
        put("manifest_json", f"{base}-{i}.json", json.dumps(doc))
for kind in ["ConfigMap", "Secret", "Node", "Endpoints", "Event"]:
    put("manifest_json", f"min-{kind}.json",
        json.dumps({"apiVersion": "v1", "kind": kind, "metadata": {"name": "a", "namespace": "default"}}))

for i, s in enumerate([
    "app=web", "app in (web,db),tier!=front", "!canary,env notin (prod)", "x", "a.b/c==d,e",
    "metadata.name=web,status.phase!=Running\napp=web\nmetadata.name=web",
    "spec.nodeName=node-1\nspec.nodeName=node-1", "app=web,app=db\napp=web",
]):
    put("selectors", f"s{i}", s)

for i, q in enumerate(["500m", "1.5Gi", "2e3", "100Mi", "1", "0.1", "128974848", "129e6", "123Mi", "1E", "+1k", "-1"]):
    put("quantity", f"q{i}", q)

conf = {"cniVersion": "1.1.0", "name": "keel", "type": "keel-cni", "subnet": "10.244.1.0/24",
        "mtu": 1450, "dataDir": "/var/lib/keel/cni"}
put("cni_config", "conf.json", json.dumps(conf))
result = {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/run/netns/x"}],
          "ips": [{"address": "10.244.1.5/24", "gateway": "10.244.1.1", "interface": 0}],
          "routes": [{"dst": "0.0.0.0/0"}], "dns": {}}
put("cni_config", "prev.json", json.dumps(dict(conf, prevResult=result)))
for v in ["0.3.1", "0.4.0", "1.0.0"]:
    put("cni_config", f"v{v}.json", json.dumps(dict(conf, cniVersion=v)))
put("cni_config", "gc.json", json.dumps(dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "abc", "ifname": "eth0"}]})))

put("cni_env", "add", "ADD\0abc123\0/run/netns/x\0eth0\0IgnoreUnknown=1;K8S_POD_NAME=a;IP=10.1.0.5\0/opt/cni/bin")
put("cni_env", "del", "DEL\0abc123\0\0eth0\0\0/opt/cni/bin")
put("cni_env", "version", "VERSION")
put("cni_env", "status", "STATUS\0\0\0\0\0/opt/cni/bin")

put("agent_cni_result", "ok.json", json.dumps(result))
put("agent_cni_result", "err.json", json.dumps({"cniVersion": "1.1.0", "code": 7, "msg": "bad", "details": "d"}) + "\0stderr text")

digest = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
cfg = {"architecture": "amd64", "os": "linux",
       "config": {"User": "1000:1000", "Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "true"], "WorkingDir": "/"},
       "rootfs": {"type": "layers", "diff_ids": [digest(b"a")]}}
put("image_config", "config.json", json.dumps(cfg))
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(b"c"), "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(b"l"), "size": 1}]}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(b"m"), "size": 1,
                        "platform": {"architecture": "amd64", "os": "linux"}}]}
put("image_manifest", "manifest", b"\x02" + json.dumps(manifest).encode())
put("image_manifest", "index", b"\x03" + json.dumps(index).encode())
put("image_manifest", "untyped", b"\x00" + json.dumps(index).encode())
put("image_manifest", "ref", b"\x01docker.io/library/busybox:1.36@sha256:" + b"a" * 64)


def layer(name, entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type = e.get("type", tarfile.REGTYPE)
            info.mode = e.get("mode", 0o644)
            info.linkname = e.get("link", "")
            info.pax_headers = e.get("pax", {})
            data = e.get("data", b"")
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    put("layer_unpack", name, buf.getvalue())


D, S, L = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
layer("plain", [{"name": "etc/", "type": D, "mode": 0o755}, {"name": "etc/hosts", "data": b"127.0.0.1 x\n"},
                {"name": "bin/sh", "data": b"#!", "mode": 0o4755}])
layer("whiteouts", [{"name": "a/", "type": D}, {"name": "a/.wh.b"}, {"name": "a/.wh..wh..opq"}])
layer("symlink-then-whiteout", [{"name": "x", "type": S, "link": "/"}, {"name": "x/a/b/.wh..wh..opq"}, {"name": "x/c/.wh.d"}])
layer("symlink-then-file", [{"name": "y", "type": S, "link": "../../.."}, {"name": "y/f", "data": b"z"}])
layer("hardlink", [{"name": "f", "data": b"1"}, {"name": "g", "type": L, "link": "f"}, {"name": "h", "type": L, "link": "/etc/passwd"}])
layer("dotdot", [{"name": "../up", "data": b"u"}])
layer("absolute", [{"name": "/abs", "data": b"a"}])
layer("devices", [{"name": "null", "type": tarfile.CHRTYPE}, {"name": "fifo", "type": tarfile.FIFOTYPE}])
layer("xattrs", [{"name": "f", "data": b"x", "pax": {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.a": "b"}}])
