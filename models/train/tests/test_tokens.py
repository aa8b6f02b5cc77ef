"""A SentencePiece model rebuilt from another model's pieces (what training from an exported .earshot needs)."""
import random
import shutil
import tempfile
import unittest

from train_fixtures import SENTENCES, train_tokenizer

from earshot_train.tokens import Tokenizer, model_with_pieces  # noqa: E402


class ModelWithPiecesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp()
        with open(train_tokenizer(cls.root), "rb") as f:
            cls.template = f.read()
        cls.tok = Tokenizer(model_proto=cls.template)
        cls.texts = SENTENCES + ["Unseen words: zebra, quixotic!", "x"]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def test_its_own_pieces_give_the_same_model(self):
        """Scores are recomputed from the order (-rank for ordinary pieces): the merges come out the same."""
        rebuilt = Tokenizer(model_proto=model_with_pieces(self.template, self.tok.pieces(), self.tok.special_ids))
        self.assertEqual(rebuilt.pieces(), self.tok.pieces())
        for text in self.texts:
            self.assertEqual(rebuilt.encode(text), self.tok.encode(text), text)
        self.assertEqual((rebuilt.sot, rebuilt.eot, rebuilt.special_ids), (self.tok.sot, self.tok.eot, [0, 1, 2]))

    def test_pieces_in_another_order_take_their_new_ids(self):
        pieces = self.tok.pieces()
        ordinary = pieces[3:]
        random.Random(5).shuffle(ordinary)
        pieces = pieces[:3] + ordinary
        rebuilt = Tokenizer(model_proto=model_with_pieces(self.template, pieces, self.tok.special_ids))
        self.assertEqual(rebuilt.pieces(), pieces)
        for text in SENTENCES:  # characters the tiny model covers (it has no byte pieces)
            ids = rebuilt.encode(text)
            self.assertEqual(rebuilt.decode(ids), text)
            self.assertEqual("".join(pieces[i] for i in ids).replace("\u2581", " ").strip(), text)

    def test_control_pieces_must_match(self):
        pieces = self.tok.pieces()
        with self.assertRaisesRegex(ValueError, "control tokens"):
            model_with_pieces(self.template, ["<pad>"] + pieces[1:], self.tok.special_ids)
        with self.assertRaisesRegex(ValueError, "control tokens"):
            model_with_pieces(self.template, pieces, [0, 1])
        with self.assertRaises(ValueError):
            model_with_pieces(self.template[:-3], pieces, self.tok.special_ids)  # cut inside its last field


if __name__ == "__main__":
    unittest.main()
