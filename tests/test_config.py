"""The typed configuration: files, environment and option overrides."""

from pathlib import Path

from twisted.trial import unittest

from nova.config import ConfigError, NovaConfig, load_config

ROOT = Path(__file__).resolve().parents[1]


class LoadConfigTests(unittest.SynchronousTestCase):
    def write(self, text: str) -> str:
        path = Path(self.mktemp())
        path.write_text(text)
        return str(path)

    def test_defaults(self) -> None:
        config = load_config(None, environ={})
        self.assertEqual(config.api.ec2_port, 8773)
        self.assertEqual(config.rpc.transport, "local")
        self.assertEqual(config.state_dir, Path("var"))

    def test_sample_documents_the_defaults(self) -> None:
        """etc/nova.conf.sample loads, and every value it shows is the default."""
        sample = load_config(ROOT / "etc" / "nova.conf.sample", environ={})
        defaults = NovaConfig()
        for section in ("api", "objectstore", "redis", "rpc", "ldap", "service", "compute",
                        "scheduler", "network"):
            self.assertEqual(getattr(sample, section), getattr(defaults, section), section)
        self.assertEqual(sample.state_dir, ROOT / "var")

    def test_shipped_config_loads(self) -> None:
        config = load_config(ROOT / "etc" / "nova.conf", environ={})
        self.assertTrue(config.redis.spawn)
        self.assertEqual(config.state_dir, ROOT / "var")

    def test_types_are_converted(self) -> None:
        config = load_config(self.write("[api]\nec2_port = 9999\n[redis]\nspawn = yes\n"
                                        "[rpc]\ncall_timeout = 2.5\n"), environ={})
        self.assertEqual(config.api.ec2_port, 9999)
        self.assertIs(config.redis.spawn, True)
        self.assertEqual(config.rpc.call_timeout, 2.5)

    def test_environment_overrides_file(self) -> None:
        config = load_config(self.write("[nova]\nstate_dir = /from/file\n"),
                             environ={"NOVA_STATE_DIR": "/from/env"})
        self.assertEqual(config.state_dir, Path("/from/env"))

    def test_options_override_environment(self) -> None:
        config = load_config(None, environ={"NOVA_STATE_DIR": "/from/env"},
                             overrides={"state_dir": Path("/opt"), "api__ec2_port": 1234,
                                        "host": None})
        self.assertEqual(config.state_dir, Path("/opt"))
        self.assertEqual(config.api.ec2_port, 1234)

    def test_errors(self) -> None:
        for text, fragment in [
            ("[api]\nec2_port = many\n", "not a valid int"),
            ("[api]\nnope = 1\n", "unknown setting 'nope'"),
            ("[bogus]\na = 1\n", "unknown section"),
            ("[redis]\nspawn = perhaps\n", "not a valid bool"),
            ("[rpc]\ntransport = pigeon\n", "rpc transport"),
            ("not an ini file", "File contains no section headers"),
        ]:
            error = self.assertRaises(ConfigError, load_config, self.write(text), environ={})
            self.assertIn(fragment, str(error))

    def test_missing_file(self) -> None:
        error = self.assertRaises(ConfigError, load_config, "/nonexistent/nova.conf", environ={})
        self.assertIn("cannot read config", str(error))
