"""`gemini-flow key ...`: the encryption key, and where the CLI finds the secret.

The secret is read here, in the CLI layer, and handed to the core: ``GEMINI_FLOW_ENCRYPTION_KEY``
if set, else the key file (``security.keyFile``: ``GEMINI_FLOW_KEY_FILE`` > database configuration >
user file > ``key`` in the platform's config folder). No command takes a secret as an argument.
"""

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import state
from gemini_flow_cli.core.keys import ENV_KEY, cipher_for, current_secret, key_file_path
from gemini_flow_cli.errors import GeminiFlowError

app = typer.Typer(no_args_is_help=True)

ENV_NEW_KEY = "GEMINI_FLOW_NEW_ENCRYPTION_KEY"


# -- commands ----------------------------------------------------------------------------------


@app.command()
def generate(
    file: Annotated[
        Optional[Path],
        typer.Option("--file", help="Where to write the key (default: security.keyFile, else 'key' in the user config folder).", show_default=False),
    ] = None,
) -> None:
    """Write a new random key file (mode 0600); never overwrites an existing one.

    The key is 256 random bits, URL-safe base64. It is never printed. Back the file up: values
    encrypted with it cannot be read without it. To move to a new key, generate it under a new
    name and run `key rotate --new-key-file`.

    Example:

        gemini-flow key generate

        gemini-flow key generate --file ~/.config/gemini-flow/key-2026 && gemini-flow key rotate --new-key-file ~/.config/gemini-flow/key-2026
    """
    from gemini_flow_cli.core import keys

    st = state()
    if file is None:
        db = st.open_db(create=False)
        file = key_file_path(db)
    path = keys.write_key_file(file.expanduser().resolve())
    result = {"success": True, "keyFile": str(path), "mode": "0600"}
    st.out.done(result, f"Wrote a new key to {path} (mode 0600). Back it up: without it encrypted values cannot be read.")


@app.command()
def status() -> None:
    """Show where the key comes from, the scrypt parameters, and whether the key fits.

    `keyMatches` is true when the current key is the one the database's values are encrypted
    with (checked against a verifier stored beside the salt; no value is decrypted).

    Example:

        gemini-flow key status --json
    """
    from gemini_flow_cli.core import keys

    st = state()
    db = st.open_db(create=False)
    problem = None
    try:
        cipher = cipher_for(db)
    except GeminiFlowError as exc:
        cipher, problem = None, exc.message
    info = keys.status(db, cipher)
    info["keyFile"] = str(key_file_path(db))
    if problem:
        info["keyProblem"] = problem
    st.out.emit(info)


@app.command()
def rotate(
    new_key_file: Annotated[
        Optional[Path],
        typer.Option(
            "--new-key-file",
            help=f"File holding the new key (mode 0600). Without it the new key is read from {ENV_NEW_KEY}.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Re-encrypt every encrypted value under a new key, in one transaction.

    The current key comes from GEMINI_FLOW_ENCRYPTION_KEY or the key file as usual; the new one
    from --new-key-file PATH or the GEMINI_FLOW_NEW_ENCRYPTION_KEY environment variable (never
    from an argument). A fresh salt is drawn. Everything happens in one transaction: if the
    command is interrupted, even by kill -9, every value is still readable with the old key and
    running it again finishes the job.

    With --new-key-file, the database's security.keyFile is set to PATH in the same transaction,
    so later commands use the new key at once (unless GEMINI_FLOW_ENCRYPTION_KEY or
    GEMINI_FLOW_KEY_FILE override it). With GEMINI_FLOW_NEW_ENCRYPTION_KEY, set
    GEMINI_FLOW_ENCRYPTION_KEY to the new key afterwards.

    Example:

        gemini-flow key generate --file ~/.config/gemini-flow/key-2026

        gemini-flow key rotate --new-key-file ~/.config/gemini-flow/key-2026
    """
    from gemini_flow_cli.core import config_writes, keys

    st = state()
    if new_key_file is not None:
        new_key_file = new_key_file.expanduser().resolve()
        new_secret, new_source = keys.read_key_file(new_key_file), f"key file {new_key_file}"
    elif os.environ.get(ENV_NEW_KEY):
        new_secret, new_source = os.environ[ENV_NEW_KEY], ENV_NEW_KEY
    else:
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"no new key: pass --new-key-file PATH (see `gemini-flow key generate --file`) or set {ENV_NEW_KEY}",
        )
    db = st.open_db(create=True)
    from gemini_flow_cli.core.crypto import Cipher

    try:
        old_secret, old_source = current_secret(db)
        old = Cipher(db, old_secret, source=old_source)
    except GeminiFlowError:
        old = old_secret = None  # fine when nothing is encrypted yet; rotate() refuses otherwise
    if old_secret == new_secret and new_key_file is None:
        raise GeminiFlowError("INVALID_INPUT", "the new key is the same as the current one; nothing was changed")

    def point_at_new_file() -> None:
        if new_key_file is not None:
            config_writes.set_value(db, "security.keyFile", str(new_key_file))

    with st.out.progress("Re-encrypting", total=None) as bar:
        result = keys.rotate(db, old, new_secret, source=new_source, progress=bar.advance, after=point_at_new_file)
    if result["alreadyRotated"]:
        # A retry after a crash that came just after the commit: finish what is left.
        with db.write():
            point_at_new_file()
        st.out.message("The database is already encrypted with the new key; nothing was re-encrypted.")
    elif new_key_file is None:
        st.out.message(f"Now set {ENV_KEY} to the new key.")
    elif os.environ.get(ENV_KEY) or os.environ.get("GEMINI_FLOW_KEY_FILE"):
        st.out.warn(f"{ENV_KEY} or GEMINI_FLOW_KEY_FILE is set and overrides security.keyFile: point it at the new key")
    st.out.done(result, f"Re-encrypted {result['rotated']} value(s) under the new key.")
