import io, hashlib, os, subprocess, tempfile
from twisted.trial import unittest
from twisted.internet import threads
from tests.test_objectstore_http_support import S3Harness, NS

class Smoke(unittest.TestCase):
    async def test_clis(self):
        h = await S3Harness(self).start(min_part_size=5*1024*1024)
        d = tempfile.mkdtemp()
        def work():
            env = dict(os.environ, AWS_ACCESS_KEY_ID=h.alice.access, AWS_SECRET_ACCESS_KEY=h.alice.secret, AWS_DEFAULT_REGION="us-east-1")
            url = f"http://{h.host}"
            out = []
            def aws(*a):
                r = subprocess.run([".venv/bin/aws", "--endpoint-url", url, *a], env=env, capture_output=True, text=True)
                out.append((a[:2], r.returncode, r.stdout[-300:], r.stderr[-500:]))
            big = os.path.join(d, "big.bin"); open(big, "wb").write(os.urandom(20*1024*1024))
            os.makedirs(os.path.join(d, "tree/sub")); open(os.path.join(d, "tree/a.txt"), "w").write("a"); open(os.path.join(d, "tree/sub/b.txt"), "w").write("b")
            aws("s3", "mb", "s3://cli")
            aws("s3", "cp", big, "s3://cli/big.bin")
            aws("s3", "cp", "s3://cli/big.bin", os.path.join(d, "back.bin"))
            out.append(open(big,"rb").read() == open(os.path.join(d, "back.bin"),"rb").read())
            aws("s3", "sync", os.path.join(d, "tree"), "s3://cli/tree")
            aws("s3", "ls", "s3://cli/", "--recursive")
            aws("s3api", "head-object", "--bucket", "cli", "--key", "tree/a.txt")
            aws("s3", "rm", "s3://cli", "--recursive")
            aws("s3", "rb", "s3://cli")
            cfg = os.path.join(d, "s3cfg")
            open(cfg, "w").write(f"[default]\naccess_key = {h.alice.access}\nsecret_key = {h.alice.secret}\nhost_base = {h.host}\nhost_bucket = {h.host}\nuse_https = False\nsignature_v2 = False\n")
            def s3cmd(*a):
                r = subprocess.run(["s3cmd", "-c", cfg, *a], capture_output=True, text=True)
                out.append(("s3cmd",) + a[:2] + (r.returncode, r.stdout[-300:], r.stderr[-600:]))
            s3cmd("mb", "s3://s3c")
            s3cmd("put", big, "s3://s3c/big.bin")
            s3cmd("put", os.path.join(d, "tree/a.txt"), "s3://s3c/a.txt")
            s3cmd("ls", "s3://s3c")
            s3cmd("info", "s3://s3c/a.txt")
            s3cmd("info", "s3://s3c")
            s3cmd("setacl", "--acl-public", "s3://s3c/a.txt")
            s3cmd("get", "s3://s3c/big.bin", os.path.join(d, "back2.bin"))
            out.append(open(big,"rb").read() == open(os.path.join(d, "back2.bin"),"rb").read())
            s3cmd("del", "s3://s3c/a.txt")
            s3cmd("del", "s3://s3c/big.bin")
            s3cmd("rb", "s3://s3c")
            return out
        for item in await threads.deferToThread(work):
            print(item)
