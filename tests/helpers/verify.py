"""Reading verify findings."""


def problems(findings):
    return [(f.severity, f.rule) for f in findings if f.severity != "info"]


def only(findings, severity, rule):
    """The one error or warning is ``rule`` at ``severity``; returns that finding."""
    assert problems(findings) == [(severity, rule)], findings
    return next(f for f in findings if f.rule == rule)
