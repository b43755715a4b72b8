/*
 * A shared object that is not a whr plugin: it has code, but no
 * whr_plugin symbol. whr serve --plugin must refuse it.
 */
int no_symbol_answer(void);

int
no_symbol_answer(void)
{
	return 42;
}
