"""What both services' HTTP layers share: problem details, JSON bodies, request context, operations routes."""
