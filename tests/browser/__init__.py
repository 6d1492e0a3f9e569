"""Browser tests of the feedback inbox (Selenium, headless Debian Chromium)."""
