# The two commands of the README, plus the install step they share.
.PHONY: install demo test

install:
	bash scripts/install.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh
