#!/usr/bin/python3
"""A router in Python, as the README's "Reporting from the router" shows it (the lines between the
markers): it logs each send in sms_usage_logs, sends through Twilio's API (the stand-in in the
tests), and reports the result through sms-retry's SQL functions in the same transaction.

    router.py send NUMBER...   one message per number; prints one JSON line per message
    router.py latency N        FIGURE lines: the SQL report's latency, and the CLI's (SMS_RETRY_CLI)

The database is libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE); Twilio's settings are
sms-retry's (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER, TWILIO_API_BASE_URL).
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from sqlalchemy import create_engine, text


class TwilioError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def twilio_send(to, body, timeout=5):
    """POSTs one message; returns its SID, raises TwilioError (with Twilio's code, None for a 5xx
    without one) or OSError (no answer)."""
    account = os.environ["TWILIO_ACCOUNT_SID"]
    base = os.environ.get("TWILIO_API_BASE_URL", "https://api.twilio.com")
    form = urllib.parse.urlencode({"To": to, "From": os.environ["TWILIO_FROM_NUMBER"], "Body": body}).encode()
    request = urllib.request.Request(f"{base}/2010-04-01/Accounts/{account}/Messages.json", data=form, method="POST")
    auth = base64.b64encode(f"{account}:{os.environ['TWILIO_AUTH_TOKEN']}".encode()).decode()
    request.add_header("Authorization", f"Basic {auth}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.load(answer)["sid"]
    except urllib.error.HTTPError as e:
        try:
            code = json.loads(e.read() or b"{}").get("code")
        except ValueError:
            code = None
        raise TwilioError(code if e.code < 500 else None, f"HTTP {e.code}") from None


# example: begin
def send_and_report(conn, log_id, to, body):
    """Sends the message logged as row log_id and reports the result in conn's transaction.
    Returns sms-retry's answer, a dict: {"result": "sent"}, {"result": "scheduled", "attempt": 1,
    "next_retry_at": ...}, {"result": "closed", "reason": "not_retryable", ...}, ..."""
    try:
        sid = twilio_send(to, body)
    except TwilioError as e:                # Twilio's error code (None for a 5xx without one)
        code, message = e.code, str(e)
    except OSError as e:                    # a timeout, a reset: the message's fate is unknown
        code, message = None, str(e) or type(e).__name__
    else:
        return conn.execute(text("SELECT sms_retry_report_sent(:id, :sid)"),
                            {"id": log_id, "sid": sid}).scalar_one()
    return conn.execute(text("SELECT sms_retry_report_failure(:id, :code, :message)"),
                        {"id": log_id, "code": code, "message": message}).scalar_one()


def send(engine, user_id, to, body):
    with engine.begin() as conn:            # the log row and its report commit together
        log_id = conn.execute(text("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length,
                                        message_content, success)
            VALUES (:user, :to, 'outbound', length(:body), :body, false) RETURNING id"""),
            {"user": user_id, "to": to, "body": body}).scalar_one()
        return log_id, send_and_report(conn, log_id, to, body)
# engine = create_engine("postgresql+psycopg2://router@db/app")
# example: end


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def latency(engine, n):
    """The report call alone, from Python, per message: the INSERT and the commit are the router's."""
    timings = []
    with engine.connect() as conn:
        raw = conn.connection.cursor()
        for i in range(n):
            raw.execute("INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, "
                        "message_content, success) VALUES (1, '+14155550100', 'outbound', 5, 'hello', false) RETURNING id")
            log_id = raw.fetchone()[0]
            start = time.perf_counter()
            if i % 2:
                raw.execute("SELECT sms_retry_report_failure(%s, 30003, 'unreachable')", (log_id,))
            else:
                raw.execute("SELECT sms_retry_report_sent(%s, %s)", (log_id, "SM%032x" % i))
            raw.fetchone()
            timings.append((time.perf_counter() - start) * 1000)
            conn.connection.commit()
    print(f"FIGURE sql report latency: p50 {percentile(timings, 50):.3f} ms, p99 {percentile(timings, 99):.3f} ms "
          f"({n} calls from Python, psycopg2, half report_sent, half report_failure 30003, each in its transaction)")
    floor = []
    with engine.connect() as conn:
        raw = conn.connection.cursor()
        for _ in range(n):
            start = time.perf_counter()
            raw.execute("SELECT 1")
            raw.fetchone()
            floor.append((time.perf_counter() - start) * 1000)
    print(f"FIGURE round trip floor: p50 {percentile(floor, 50):.3f} ms, p99 {percentile(floor, 99):.3f} ms "
          f"({n} SELECT 1 on the same connection: what any statement costs from Python here)")
    cli = os.environ.get("SMS_RETRY_CLI")
    if not cli:
        return
    cli_timings = []
    with engine.begin() as conn:
        ids = [conn.execute(text("INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, "
                                 "message_content, success) VALUES (1, '+14155550100', 'outbound', 5, 'hello', false) "
                                 "RETURNING id")).scalar_one() for _ in range(40)]
    for log_id in ids:
        start = time.perf_counter()
        subprocess.run([cli, "schedule", "--log-id", str(log_id), "--error-code", "30003"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cli_timings.append((time.perf_counter() - start) * 1000)
    print(f"FIGURE cli report latency: p50 {percentile(cli_timings, 50):.1f} ms, p99 {percentile(cli_timings, 99):.1f} ms "
          f"({len(ids)} runs of sms-retry schedule from Python)")


def main():
    engine = create_engine("postgresql+psycopg2://", future=True)   # libpq's environment
    if sys.argv[1] == "send":
        for i, number in enumerate(sys.argv[2:]):
            log_id, answer = send(engine, 1, number, "Your code is 123456")
            print(json.dumps({"number": number, "log_id": log_id, "answer": answer}, default=str), flush=True)
    elif sys.argv[1] == "latency":
        latency(engine, int(sys.argv[2]))


if __name__ == "__main__":
    main()
