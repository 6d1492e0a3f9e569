import logging
import sentry_feedback
from sentry_feedback.testing import MockTransport

def before_breadcrumb(crumb, hint):
    record = hint.get("log_record")
    if record is not None and record.name.startswith("urllib3"):
        return None                                     # too noisy
    if crumb.get("category") == "sql":
        crumb["message"] = crumb["message"].split(" WHERE ")[0]   # no values
    return crumb

logging.basicConfig(level=logging.INFO)
transport = MockTransport()
sentry_feedback.init(transport=transport, before_breadcrumb=before_breadcrumb)
logging.getLogger("urllib3.connectionpool").info("Starting new HTTPS connection")
logging.getLogger("shop").info("cart checked out")
sentry_feedback.add_breadcrumb(category="sql", message="SELECT * FROM users WHERE email = 'jane@example.com'")
sentry_feedback.capture_feedback("x")
sentry_feedback.flush()
print([(c["category"], c["message"]) for c in transport.feedback[0]["breadcrumbs"]["values"]])
