import unittest

import calc


class Smoke(unittest.TestCase):
    def test_imports(self) -> None:
        self.assertTrue(calc.__doc__)
