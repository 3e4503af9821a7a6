"""The conformance suite every pubsubkit backend runs, shipped as a pytest plugin.

A backend's tests subclass the suite classes and provide a URL fixture; see docs/writing-a-plugin.md.
"""
