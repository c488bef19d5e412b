-- wrk: the create request sms-retry sends (form body, Basic auth), for the lean-client figure.
wrk.method = "POST"
wrk.body = "To=%2B14155550100&From=%2B15005550006&Body=Your+code+is+123456&Attempt=2&ValidityPeriod=36000"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDpiZW5jaC10b2tlbg=="
