"""The worker host: the process that runs tries, outliving the scheduler that decides them."""
