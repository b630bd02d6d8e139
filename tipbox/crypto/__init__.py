"""tipbox cryptography: derivations, keys, the directory, grants, codenames and envelopes.

Every construction composes libsodium primitives through PyNaCl; the byte-level formats are
specified in ``docs/envelope.md``. The modules split into a public side, which the
source-facing app may import (``kdf``, ``errors``, ``wordlist``, ``keys``, ``directory``,
``codenames``, ``passphrases``, ``envelope``), and a private side that handles newsroom and
journalist secrets (``identity``, ``grants``, ``journalist``, ``recovery``). An import rule
keeps ``tipbox.source`` away from the private side, so this package deliberately imports
nothing: importing ``tipbox.crypto`` must not pull a private module in.
"""
